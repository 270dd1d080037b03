//! The admin API's FFDC calls (seed 003's management tool, and seed 000's `ksysmgr trace`):
//! a cluster dump by hand, the incidents and one incident's archive, the settings, and a node's
//! trace log — this controller's, or another node's through its `Ffdc` service.
use crate::controller::core::ControllerCore;
use crate::controller::messages;
use crate::domain::{FfdcNodeRecord, FfdcSettings, FfdcTrigger};
use crate::error::{Result, VmrmError};
use crate::ffdc::{store, views};
use crate::hsdb::HsdbAccess;
use crate::hsdb::client::retry_on_conflict;
use crate::pb::{self, ffdc_client::FfdcClient};

/// The longest note a cluster dump carries.
const DETAIL_MAX: usize = 1024;

/// `ksysmgr add ffdc [detail=…]`: opens a MANUAL incident and asks every node to capture.
pub async fn add(core: &ControllerCore, detail: &str) -> Result<pb::FfdcIncidentView> {
    if detail.chars().count() > DETAIL_MAX {
        return Err(VmrmError::invalid(format!("detail is longer than {DETAIL_MAX} characters")));
    }
    let detail = match detail.is_empty() {
        true => "cluster dump asked by hand".to_string(),
        false => detail.to_string(),
    };
    let node = core.ffdc.node().to_string();
    let opened = core.ffdc.trigger(FfdcTrigger::Manual, &node, &detail).await?.ok_or_else(|| {
        VmrmError::precondition("the manual trigger is disabled: enable it with `ksysmgr modify ffdc triggers=…`")
    })?;
    let incident = match opened {
        store::Opened::New(i) | store::Opened::Joined(i) => i,
    };
    let list = views::list(&core.hsdb, &incident.id, &node).await?;
    list.incidents.into_iter().next().ok_or_else(|| VmrmError::internal("the new incident is not stored"))
}

/// `ksysmgr modify ffdc …`: the settings changed as asked (nothing changes on a bad value).
pub async fn modify(core: &ControllerCore, change: &pb::FfdcSettingsChange) -> Result<pb::CommandReply> {
    let named = changed_names(change);
    if named.is_empty() {
        return Err(VmrmError::invalid(
            "name a setting to modify: triggers, periodic, hsdb_threshold, hysteresis, coalesce, deadline, quota, node_cap or incident_cap",
        ));
    }
    retry_on_conflict(|| async {
        let (current, version) =
            core.hsdb.get::<FfdcSettings>(FfdcSettings::KEY).await?.unwrap_or_else(|| (FfdcSettings::default(), 0));
        let next = views::changed(current, change)?;
        core.hsdb.put_if_version(&next, version).await
    })
    .await?;
    Ok(pb::CommandReply { steps: vec![messages::ffdc_modified(&named.join(", "))] })
}

fn changed_names(c: &pb::FfdcSettingsChange) -> Vec<&'static str> {
    [
        ("triggers", !c.triggers.is_empty()),
        ("periodic", c.periodic_secs.is_some()),
        ("hsdb_threshold", c.hsdb_threshold_pct.is_some()),
        ("hysteresis", c.hysteresis_pct.is_some()),
        ("coalesce", c.coalesce_secs.is_some()),
        ("deadline", c.deadline_secs.is_some()),
        ("quota", c.quota_mib.is_some()),
        ("node_cap", c.node_cap_kib.is_some()),
        ("incident_cap", c.incident_cap_mib.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// `ksysmgr trace log=NAME [node=NODE]`: this controller's log, or a registered node's.
pub async fn trace(core: &ControllerCore, req: pb::TraceRequest) -> Result<pb::TraceReply> {
    let me = core.ffdc.node();
    if req.node.is_empty() || req.node == me {
        return views::trace(me, &req.log, req.lines);
    }
    let node = crate::domain::names::NodeName::parse(&req.node)?;
    let (record, _) = core.hsdb.get::<FfdcNodeRecord>(node.as_str()).await?.ok_or_else(|| {
        VmrmError::not_found(format!("no node {node} is registered: `ksysmgr query ffdc` lists the nodes"))
    })?;
    let mut client = FfdcClient::new(core.pool.get(&record.endpoint)?);
    let asked = pb::TraceRequest { node: String::new(), ..req };
    let reply = client.trace(crate::transport::deadline(asked, core.timing.rpc_deadline)).await?;
    Ok(reply.into_inner())
}
