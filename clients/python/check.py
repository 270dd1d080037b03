"""A client of the vmrm admin API in another language, generated from proto/ alone.

It reads states as enums, never as English: lists hosts and VMs, changes a VM's priority,
restarts a VM onto a named host and reads where it went and under which fencing epoch, live-
migrates a VM following the typed progress, and sees bad input refused with a status code.
Every call is mutual TLS with a certificate of the cluster's CA: the administrator's for the
work, the monitor's to see a query answered and an action refused, none to see the call refused.
Run by check.sh against the local datacenter; exits non-zero on the first check that fails.

usage: check.py CERTS_DIR ENDPOINT [ENDPOINT ...]   (the local datacenter's certificates; the
       controllers, any of which may be the active one)
"""
import os
import sys
import time

import grpc
from vmrm.v1 import admin_pb2 as admin
from vmrm.v1 import admin_pb2_grpc
from vmrm.v1 import migration_pb2 as migration
from vmrm.v1 import states_pb2 as states


def check(ok, what):
    if not ok:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def credentials(certs, who):
    """`who`'s certificate and key and the cluster CA, from the certificate directory (`who`
    None: the CA only, no client certificate)."""
    def read(name):
        with open(os.path.join(certs, name), "rb") as f:
            return f.read()
    if who is None:
        return grpc.ssl_channel_credentials(root_certificates=read("ca.pem"))
    return grpc.ssl_channel_credentials(read("ca.pem"), read(f"{who}.key"), read(f"{who}.pem"))


def active_controller(endpoints, creds):
    """The controller that answers (a standby refuses with UNAVAILABLE), and its endpoint."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for endpoint in endpoints:
            stub = admin_pb2_grpc.AdminStub(grpc.secure_channel(endpoint, creds))
            try:
                stub.QueryCluster(admin.QueryRequest(), timeout=5)
                return stub, endpoint
            except grpc.RpcError:
                continue
        time.sleep(1)
    raise SystemExit("no controller answered")


def vms(stub):
    return {v.name: v for v in stub.QueryVm(admin.QueryRequest(), timeout=10).vms}


def wait_for(what, probe, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"FAILED: {what} (waited {seconds} s)")


def code_of(call):
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def main(certs, endpoints):
    stub, endpoint = active_controller(endpoints, credentials(certs, "admin"))

    monitor = admin_pb2_grpc.AdminStub(grpc.secure_channel(endpoint, credentials(certs, "monitor")))
    check(len(monitor.QueryVm(admin.QueryRequest(), timeout=10).vms) == 12, "a monitor lists the VMs")
    code = code_of(lambda: monitor.RestartVm(admin.RestartVmRequest(vm="vm-1-1"), timeout=10))
    check(code == grpc.StatusCode.PERMISSION_DENIED, f"a monitor's restart refused ({code.name})")
    nobody = admin_pb2_grpc.AdminStub(grpc.secure_channel(endpoint, credentials(certs, None)))
    code = code_of(lambda: nobody.QueryVm(admin.QueryRequest(), timeout=10))
    check(code == grpc.StatusCode.UNAUTHENTICATED, f"a call without a certificate refused ({code.name})")

    hosts = stub.QueryHost(admin.QueryRequest(), timeout=10).hosts
    for h in hosts:
        print(f"  {h.name:<8} {states.HostState.Name(h.state)} in {h.host_group}, ha_monitor={h.ha_monitor}")
    check(len(hosts) == 4 and all(h.state == states.HOST_STATE_OPERATING for h in hosts),
          "four hosts, every one HOST_STATE_OPERATING")

    def all_ready():
        now = vms(stub)
        ready = all(v.state == states.VM_STATE_READY_TO_MOVE and v.lpar_state == states.LPAR_STATE_RUNNING
                    for v in now.values())
        return now if len(now) == 12 and ready else None
    listed = wait_for("12 VMs READY_TO_MOVE and RUNNING", all_ready)
    for v in sorted(listed.values(), key=lambda v: v.name)[:3]:
        print(f"  {v.name:<8} {v.host:<8} {states.VmState.Name(v.state)} {states.LparState.Name(v.lpar_state)} "
              f"{states.Priority.Name(v.priority)} {states.VmStatus.Name(v.vm_status)}")
    check(True, "12 VMs listed, every one VM_STATE_READY_TO_MOVE and LPAR_STATE_RUNNING")

    settings = admin.Settings(priority=states.PRIORITY_HIGH)
    stub.Modify(admin.ModifyRequest(level=admin.MODIFY_LEVEL_VM, names=["vm-1-2"], settings=settings), timeout=10)
    check(vms(stub)["vm-1-2"].priority == states.PRIORITY_HIGH, "vm-1-2's priority changed to PRIORITY_HIGH")

    done = stub.RestartVm(admin.RestartVmRequest(vm="vm-1-1", host="host-2"), timeout=120)
    print(f"  restart: {done.vm} {done.source} -> {done.target}, epoch {done.epoch}, task {done.task}")
    check((done.vm, done.source, done.target) == ("vm-1-1", "host-1", "host-2") and done.epoch >= 1,
          "vm-1-1 restarted from host-1 onto host-2 under a fencing epoch")
    completed = [s for s in done.steps if s.code == admin.STEP_CODE_RESTART_COMPLETED]
    check(len(completed) == 1 and (completed[0].subject, completed[0].target) == ("vm-1-1", "host-2"),
          "its steps include STEP_CODE_RESTART_COMPLETED naming vm-1-1 and host-2")
    after = vms(stub)["vm-1-1"]
    check(after.host == "host-2" and after.lpar_state == states.LPAR_STATE_RUNNING and after.epoch == done.epoch
          and after.restart.phase == states.RESTART_PHASE_COMPLETED,
          "the VM's view agrees: host-2, RUNNING, the same epoch, last restart COMPLETED")

    phases, last = [], None
    request = admin.MigrateRequest(scope=admin.SCOPE_VM, names=["vm-1-2"], to="host-3")
    for reply in stub.Migrate(request, timeout=300):
        if reply.HasField("progress"):
            last = reply.progress
            if not phases or phases[-1] != last.phase:
                phases.append(last.phase)
    print("  migration phases: " + " -> ".join(migration.MigrationPhase.Name(p) for p in phases))
    check(last is not None and last.phase == migration.MIGRATION_PHASE_COMPLETED,
          "the live migration of vm-1-2 ended MIGRATION_PHASE_COMPLETED")
    check(last.source_checksum != 0 and last.source_checksum == last.target_checksum,
          f"guest memory equal on both ends (checksum {last.source_checksum:#x}), pause {last.downtime_us} us")
    check(vms(stub)["vm-1-2"].host == "host-3", "vm-1-2 runs on host-3")

    events = stub.QueryEvent(admin.EventQuery(name="vm-1-1", limit=20), timeout=10).events
    check(any(e.name == "RESTART_COMPLETED" and e.severity != states.SEVERITY_UNSPECIFIED for e in events),
          "vm-1-1's events include RESTART_COMPLETED with a severity")

    invalid, not_found = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    bad = [
        ("a VM name with a path", invalid,
         lambda: stub.RestartVm(admin.RestartVmRequest(vm="../../etc/passwd"), timeout=10)),
        ("a 20000-byte name", invalid, lambda: stub.QueryVm(admin.QueryRequest(name="x" * 20000), timeout=10)),
        ("an unknown priority number", invalid,
         lambda: stub.Modify(admin.ModifyRequest(level=admin.MODIFY_LEVEL_VM, names=["vm-2-1"],
                                                 settings=admin.Settings(priority=9)), timeout=10)),
        ("an unknown target host", not_found,
         lambda: stub.RestartVm(admin.RestartVmRequest(vm="vm-2-1", host="nosuch"), timeout=10)),
    ]
    for what, expected, call in bad:
        code = code_of(call)
        check(code == expected, f"{what} refused ({code.name})")
    check(vms(stub)["vm-2-1"].epoch == 0, "the refused requests changed nothing")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2:])
