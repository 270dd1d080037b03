//! `lpm`: live migration throughput and pause, beside loopback socket copies.
//!
//! * Baselines: 1 GiB written through one TCP connection on 127.0.0.1 between two threads and
//!   read away (the best the loopback does for one stream), and the same through a TLS
//!   connection as the nodes make one — the baseline on equal footing, since the migration
//!   lane is mutual TLS like every other connection.
//! * Migration (fast profile, real processes on loopback): a 1 GiB VM whose memory is all
//!   written migrates between two hosts' server units over the HMC job and the SU-to-SU gRPC
//!   stream; throughput = bytes sent / the migration's time from its start to the target's
//!   "resumed" (the source's cleanup after that is not the guest's wait). Each migration runs
//!   right after a baseline copy and the ratio is taken per pair (the machine is shared: its
//!   speed moves from minute to minute). Target: at least 70 % of the (TLS) baseline.
//! * Pause (downtime): the same VM migrated with its workload dirtying 0, 10 and 100 MB/s, a
//!   maximum downtime of 100 ms; the pause is measured on the source, from stopping the VM to
//!   the target's "resumed". Target: under 100 ms at 10 MB/s.
//!
//! `cargo bench --bench lpm -- [--rounds N] [--base-port P]`.
use anyhow::{Result, bail};
use clap::Parser;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use vmrm::config::VmConfig;
use vmrm::launcher::{Datacenter, Topology};
use vmrm::pb;
use vmrm::transport::tls::Principal;
use vmrm::transport::tls::issue::Authority;

#[derive(Parser)]
#[command(name = "lpm", about = "Live migration throughput and pause beside a loopback socket copy")]
struct Args {
    /// Runs of each measurement (medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The datacenter listens on BASE+1 … BASE+350.
    #[arg(long, default_value_t = 28900)]
    base_port: u16,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const VMRMD: &str = env!("CARGO_BIN_EXE_vmrmd");
const GIB: usize = 1 << 30;
const MAX_DOWNTIME_MS: u32 = 100;
const DIRTY_RATES_MB_S: [u64; 3] = [0, 10, 100];

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Reads `stream` to its end: how many bytes came.
fn drain(mut stream: impl Read) -> std::io::Result<usize> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        match stream.read(&mut buf)? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

/// Writes 1 GiB into `stream`, 1 MiB at a time.
fn write_gib(stream: &mut impl Write) -> std::io::Result<()> {
    let chunk = vec![0xA5u8; 1 << 20];
    (0..GIB / chunk.len()).try_for_each(|_| stream.write_all(&chunk))
}

/// Bytes per second of a 1 GiB copy that started at `started` and of which `read` arrived.
fn rate(started: Instant, read: usize) -> Result<f64> {
    let elapsed = started.elapsed().as_secs_f64();
    match read == GIB {
        true => Ok(GIB as f64 / elapsed),
        false => bail!("the reader got {read} bytes of {GIB}"),
    }
}

/// 1 GiB through a loopback TCP connection; bytes per second.
fn loopback_copy() -> Result<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || drain(listener.accept()?.0));
    let mut stream = std::net::TcpStream::connect(addr)?;
    let started = Instant::now();
    write_gib(&mut stream)?;
    drop(stream);
    rate(started, reader.join().map_err(|_| anyhow::anyhow!("reader panicked"))??)
}

/// 1 GiB through a loopback TLS connection as the nodes make one (rustls with ring, its default
/// protocol and cipher choice, a certificate of a cluster CA): the copy above, encrypted — the
/// baseline on equal footing with the migration lane, which mutual TLS encrypts too.
fn tls_loopback_copy() -> Result<f64> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
    let ca = Authority::create("bench")?;
    let mut who = Principal::anonymous();
    who.name = "bench".into();
    let issued = ca.issue(&who, &["127.0.0.1".into()])?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())?;
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    // No session tickets: the writer never reads, and unread tickets would reset the connection
    // when it closes.
    server.send_tls13_tickets = 0;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes())?)?;
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = Arc::new(server);
    let reader = std::thread::spawn(move || -> Result<usize> {
        let (tcp, _) = listener.accept()?;
        Ok(drain(rustls::StreamOwned::new(rustls::ServerConnection::new(server)?, tcp))?)
    });
    let name = ServerName::try_from("127.0.0.1")?;
    let connection = rustls::ClientConnection::new(Arc::new(client), name)?;
    let mut stream = rustls::StreamOwned::new(connection, std::net::TcpStream::connect(addr)?);
    let started = Instant::now();
    write_gib(&mut stream)?;
    stream.conn.send_close_notify();
    stream.flush()?;
    drop(stream);
    rate(started, reader.join().map_err(|_| anyhow::anyhow!("reader panicked"))??)
}

/// Two hosts; host-1 runs one 1 GiB VM.
fn topology(base_port: u16, dir: &Path) -> Topology {
    let mut t = Topology::uniform(base_port, 2, 0, dir.to_path_buf());
    t.hosts[0].vms = vec![VmConfig { name: "vm-big".into(), cpu: 2, memory_mb: 1024, permanent_index: None }];
    t
}

/// One migration of `vm-big` from `from` to `to`; its final progress.
async fn migrate(dc: &Datacenter, to: &str) -> Result<pb::MigrationProgress> {
    let limits = pb::MigrationLimits { max_downtime_ms: MAX_DOWNTIME_MS, ..Default::default() };
    let req = pb::MigrateRequest {
        scope: pb::Scope::Vm as i32,
        names: vec!["vm-big".into()],
        to: to.into(),
        limits: Some(limits),
        ..Default::default()
    };
    let replies = dc.admin()?.migrate_all(req).await?;
    let done = replies.iter().rev().find_map(|r| r.progress.clone()).ok_or_else(|| anyhow::anyhow!("no progress"))?;
    if done.phase() != pb::MigrationPhase::Completed || done.source_checksum != done.target_checksum {
        bail!("migration to {to} did not complete intact: {done:?}");
    }
    Ok(done)
}

async fn run(args: Args) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("vmrm-lpm-bench-").tempdir()?;
    let mut dc = Datacenter::start(topology(args.base_port, dir.path()), Path::new(VMRMD)).await?;
    dc.setup().await?;
    let hosts = ["host-1", "host-2"];
    let mut at = 0;
    dc.set_workload(hosts[at], "vm-big", 1024, 0, false).await?;
    // Side by side: each migration right after a baseline copy, so both see the same machine.
    let (mut raw, mut throughput, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut encrypted, mut tls_ratios) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        let copy = loopback_copy()?;
        let tls_copy = tls_loopback_copy()?;
        let done = migrate(&dc, hosts[1 - at]).await?;
        at = 1 - at;
        let migration = done.sent_bytes as f64 / (done.resumed_after_ms as f64 / 1000.0);
        raw.push(copy);
        encrypted.push(tls_copy);
        throughput.push(migration);
        ratios.push(migration / copy);
        tls_ratios.push(migration / tls_copy);
    }
    let mut pauses = Vec::new();
    for rate in DIRTY_RATES_MB_S {
        dc.set_workload(hosts[at], "vm-big", 1024, rate * 1000, false).await?;
        let mut ms = Vec::new();
        for _ in 0..args.rounds {
            let done = migrate(&dc, hosts[1 - at]).await?;
            at = 1 - at;
            ms.push(done.downtime_us as f64 / 1000.0);
        }
        pauses.push((rate, median(&mut ms), ms.iter().cloned().fold(0.0, f64::max)));
    }
    dc.stop();

    let (raw, tls, mig) = (median(&mut raw), median(&mut encrypted), median(&mut throughput));
    let spread = |r: &[f64]| {
        format!("{:.2}–{:.2}", r.iter().cloned().fold(f64::MAX, f64::min), r.iter().cloned().fold(0.0, f64::max))
    };
    let (raw_spread, tls_spread) = (spread(&ratios), spread(&tls_ratios));
    println!("1 GiB, {} runs each, medians", args.rounds);
    println!("  loopback TCP copy (baseline)   {:>8.0} MB/s", raw / 1e6);
    println!("  loopback TLS copy (baseline)   {:>8.0} MB/s", tls / 1e6);
    println!("  live migration of a 1 GiB VM   {:>8.0} MB/s  (mutual TLS)", mig / 1e6);
    println!(
        "  ratio to the TLS copy just before it: {:.2} median ({tls_spread}; target >= 0.70, equal footing)",
        median(&mut tls_ratios)
    );
    println!("  ratio to the plain TCP copy just before it: {:.2} median ({raw_spread})", median(&mut ratios));
    println!("  pause, max_downtime {MAX_DOWNTIME_MS} ms:");
    for (rate, median, worst) in pauses {
        println!("    dirtying {rate:>3} MB/s          {median:>8.1} ms median, {worst:.1} ms worst");
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(run(args))
}
