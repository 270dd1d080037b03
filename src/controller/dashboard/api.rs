//! The dashboard's JSON calls: each one is an admin API call made for the person logged in —
//! the gate's rules for that person first, then the same service method `ksysmgr` reaches —
//! with its answer as JSON (the admin API's own messages) and its refusal as an HTTP status
//! with the gRPC code and message.
use super::Dashboard;
use super::login::LoginRequest;
use crate::error::VmrmError;
use crate::pb::{self, admin_server::Admin};
use crate::transport::gate::rules;
use crate::transport::tls::{Principal, Role};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

/// A refusal or failure, as the page shows it.
pub struct ApiError(Status);

impl From<VmrmError> for ApiError {
    fn from(e: VmrmError) -> Self {
        Self(Status::from(e))
    }
}

impl From<Status> for ApiError {
    fn from(s: Status) -> Self {
        Self(s)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let http = match self.0.code() {
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => StatusCode::CONFLICT,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let code = format!("{:?}", self.0.code());
        (http, Json(serde_json::json!({ "code": code, "error": self.0.message() }))).into_response()
    }
}

type Answer<T> = Result<Json<T>, ApiError>;

/// A request for `who`, as the gate would hand it to the service.
pub(super) fn request<T>(who: &Principal, method: &str, message: T) -> Result<tonic::Request<T>, ApiError> {
    rules::authorize(who, &format!("/vmrm.v1.Admin/{method}"))?;
    let mut req = tonic::Request::new(message);
    req.extensions_mut().insert(who.clone());
    Ok(req)
}

pub async fn challenge(State(d): State<Dashboard>) -> Answer<serde_json::Value> {
    let challenge = match &d.logins {
        Some(logins) => logins.challenge()?,
        None => String::new(),
    };
    Ok(Json(serde_json::json!({ "challenge": challenge })))
}

pub async fn login(State(d): State<Dashboard>, Json(req): Json<LoginRequest>) -> Result<Response, ApiError> {
    let Some(logins) = &d.logins else { return Ok(Json(whoami_of(&d, &Principal::unchecked())).into_response()) };
    let (session, who) = logins.login(&req)?;
    tracing::info!(who = %who, "dashboard login");
    let cookie = format!(
        "{}={session}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        super::COOKIE,
        super::login::SESSION_TTL.as_secs()
    );
    Ok(([(header::SET_COOKIE, cookie)], Json(whoami_of(&d, &who))).into_response())
}

pub async fn logout(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    if let (Some(logins), Some(id)) = (&d.logins, super::session_id(&headers)) {
        logins.logout(id);
    }
    let expired = format!("{}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0", super::COOKIE);
    ([(header::SET_COOKIE, expired)], StatusCode::NO_CONTENT).into_response()
}

/// Who is logged in, and where.
#[derive(Serialize)]
pub struct WhoAmI {
    name: String,
    roles: Vec<String>,
    /// The VMs an operator may act on.
    vms: Vec<String>,
    controller: String,
    active: bool,
    /// The active controller, when this one is standby.
    active_controller: Option<String>,
}

fn whoami_of(d: &Dashboard, who: &Principal) -> WhoAmI {
    let roles = match who.unchecked {
        true => vec![Role::Admin.to_string()],
        false => who.roles.iter().map(ToString::to_string).collect(),
    };
    let active = d.core.ensure_active().is_ok();
    WhoAmI {
        name: who.name.clone(),
        roles,
        vms: who.vms.iter().map(ToString::to_string).collect(),
        controller: d.node.clone(),
        active,
        active_controller: (!active).then(|| d.core.hsdb.node().leader_endpoint()).flatten(),
    }
}

pub async fn whoami(State(d): State<Dashboard>, headers: HeaderMap) -> Answer<WhoAmI> {
    let who = d.who(&headers)?;
    Ok(Json(whoami_of(&d, &who)))
}

/// The tree: host groups, hosts and VMs, from this controller's copy of the HSDB.
#[derive(Serialize)]
pub struct Topology {
    host_groups: Vec<pb::HostGroupView>,
    hosts: Vec<pb::HostView>,
    vms: Vec<pb::VmView>,
}

pub async fn topology(State(d): State<Dashboard>, headers: HeaderMap) -> Answer<Topology> {
    let who = d.who(&headers)?;
    let everything = || pb::QueryRequest { name: String::new(), follower_read: true };
    let host_groups = d.admin.query_host_group(request(&who, "QueryHostGroup", everything())?).await;
    let hosts = d.admin.query_host(request(&who, "QueryHost", everything())?).await;
    let vms = d.admin.query_vm(request(&who, "QueryVm", everything())?).await;
    Ok(Json(Topology {
        host_groups: or_empty(host_groups)?.host_groups,
        hosts: or_empty(hosts)?.hosts,
        vms: or_empty(vms)?.vms,
    }))
}

/// A query's answer, or an empty one when there is nothing to list yet (no cluster or no host
/// group is an empty tree, not an error).
fn or_empty<T: Default>(answer: Result<tonic::Response<T>, Status>) -> Result<T, ApiError> {
    match answer {
        Ok(r) => Ok(r.into_inner()),
        Err(e) if matches!(e.code(), Code::NotFound | Code::FailedPrecondition) => Ok(T::default()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    severity: String,
    #[serde(default)]
    unacknowledged: bool,
    before: Option<u64>,
}

/// A page of events (the newest 100, or those before `before`).
pub async fn events(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Answer<pb::EventList> {
    let who = d.who(&headers)?;
    let severity = match q.severity.as_str() {
        "" => pb::Severity::Unspecified,
        s => pb::Severity::from_str_name(&format!("SEVERITY_{}", s.to_ascii_uppercase()))
            .ok_or_else(|| VmrmError::invalid(format!("unknown severity `{}`", crate::error::quote(s))))?,
    };
    let query = pb::EventQuery {
        follower_read: true,
        severity: severity as i32,
        unacknowledged: q.unacknowledged,
        before: q.before,
        limit: Some(100),
        ..Default::default()
    };
    Ok(Json(d.admin.query_event(request(&who, "QueryEvent", query)?).await?.into_inner()))
}

/// What an action did: the lines `ksysmgr` prints.
#[derive(Serialize)]
pub struct Done {
    lines: Vec<String>,
}

fn done(steps: &[pb::Step]) -> Json<Done> {
    Json(Done { lines: steps.iter().map(|s| s.text.clone()).collect() })
}

#[derive(Deserialize)]
pub struct AckBody {
    #[serde(default)]
    sequence: u64,
    #[serde(default)]
    all: bool,
}

pub async fn ack(State(d): State<Dashboard>, headers: HeaderMap, Json(b): Json<AckBody>) -> Answer<Done> {
    let who = d.actor(&headers)?;
    let reply =
        d.admin.ack_event(request(&who, "AckEvent", pb::AckRequest { sequence: b.sequence, all: b.all })?).await?;
    Ok(done(&reply.into_inner().steps))
}

#[derive(Deserialize)]
pub struct VmBody {
    vm: String,
    /// A target host; empty: the controller picks one.
    #[serde(default)]
    host: String,
}

pub async fn restart(State(d): State<Dashboard>, headers: HeaderMap, Json(b): Json<VmBody>) -> Answer<Done> {
    let who = d.actor(&headers)?;
    let req = request(&who, "RestartVm", pb::RestartVmRequest { vm: b.vm, host: b.host })?;
    Ok(done(&d.admin.restart_vm(req).await?.into_inner().steps))
}

/// Runs a migration to its end: its steps' lines.
async fn migrate(d: &Dashboard, who: &Principal, req: pb::MigrateRequest) -> Answer<Done> {
    let mut replies = d.admin.migrate(request(who, "Migrate", req)?).await?.into_inner();
    let mut lines = Vec::new();
    while let Some(reply) = replies.next().await {
        lines.extend(reply?.steps.into_iter().map(|s| s.text));
    }
    Ok(Json(Done { lines }))
}

pub async fn lpm(State(d): State<Dashboard>, headers: HeaderMap, Json(b): Json<VmBody>) -> Answer<Done> {
    let who = d.actor(&headers)?;
    let req = pb::MigrateRequest {
        scope: pb::Scope::Vm as i32,
        names: vec![b.vm],
        to: b.host,
        action: pb::MigrateAction::Migrate as i32,
        ..Default::default()
    };
    migrate(&d, &who, req).await
}

#[derive(Deserialize)]
pub struct HostBody {
    host: String,
}

/// `ksysmgr lpm host`: every VM of the host moves to the others.
pub async fn evacuate(State(d): State<Dashboard>, headers: HeaderMap, Json(b): Json<HostBody>) -> Answer<Done> {
    let who = d.actor(&headers)?;
    let req = pb::MigrateRequest {
        scope: pb::Scope::Host as i32,
        names: vec![b.host],
        action: pb::MigrateAction::Migrate as i32,
        ..Default::default()
    };
    migrate(&d, &who, req).await
}

/// `ksysmgr restore host`: the VMs whose home is the host go back to it.
pub async fn restore(State(d): State<Dashboard>, headers: HeaderMap, Json(b): Json<HostBody>) -> Answer<Done> {
    let who = d.actor(&headers)?;
    let req = pb::RestoreRequest { scope: pb::Scope::Host as i32, name: b.host };
    Ok(done(&d.admin.restore(request(&who, "Restore", req)?).await?.into_inner().steps))
}

/// A policy change from the details pane: a host group's restart policy or HA monitoring, a
/// VM's priority or HA monitoring.
#[derive(Deserialize)]
pub struct PolicyBody {
    /// `host_group` or `vm`.
    level: String,
    name: String,
    restart_policy: Option<String>,
    priority: Option<String>,
    ha_monitor: Option<bool>,
}

pub async fn policy(State(d): State<Dashboard>, headers: HeaderMap, Json(b): Json<PolicyBody>) -> Answer<Done> {
    let who = d.actor(&headers)?;
    let level = match b.level.as_str() {
        "host_group" => pb::ModifyLevel::HostGroup,
        "vm" => pb::ModifyLevel::Vm,
        other => {
            return Err(VmrmError::invalid(format!("no policies at level `{}`", crate::error::quote(other))).into());
        }
    };
    let wire = |prefix: &str, value: &Option<String>| -> Result<i32, ApiError> {
        let Some(v) = value else { return Ok(0) };
        let name = format!("{prefix}_{}", v.to_ascii_uppercase());
        let parsed = match prefix {
            "RESTART_POLICY" => pb::RestartPolicy::from_str_name(&name).map(|p| p as i32),
            _ => pb::Priority::from_str_name(&name).map(|p| p as i32),
        };
        parsed.ok_or_else(|| VmrmError::invalid(format!("`{}` is no {prefix}", crate::error::quote(v))).into())
    };
    let settings = pb::Settings {
        restart_policy: wire("RESTART_POLICY", &b.restart_policy)?,
        priority: wire("PRIORITY", &b.priority)?,
        ha_monitor: b.ha_monitor,
        ..Default::default()
    };
    let req = pb::ModifyRequest { level: level as i32, names: vec![b.name], settings: Some(settings) };
    Ok(done(&d.admin.modify(request(&who, "Modify", req)?).await?.into_inner().steps))
}
