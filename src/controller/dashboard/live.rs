//! Live updates for the page, as server-sent events: every new event of the log (`event`) and
//! every line of the operations in progress (`status`, the `query system status monitor=yes`
//! lines), from the active controller's `WatchEvents` and `WatchStatus` streams. On a standby,
//! or when this controller stops being the active one, the stream says so (`standby`) and ends;
//! the browser's EventSource reconnects by itself, and the page goes on polling meanwhile.
use super::Dashboard;
use super::api::{ApiError, request};
use crate::pb::{self, admin_server::Admin};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};
use std::convert::Infallible;
use tonic::Status;

/// One item of a watch as a server-sent event, and whether it is the last (a watch ends at its
/// first error).
fn sse<T: serde::Serialize>(kind: &str, item: Result<T, Status>) -> (Event, bool) {
    let (event, last) = match item {
        Ok(data) => (Event::default().event(kind).json_data(data), false),
        Err(e) => (Event::default().event("standby").json_data(serde_json::json!({ "error": e.message() })), true),
    };
    (event.unwrap_or_else(|e| Event::default().event("standby").data(e.to_string())), last)
}

pub async fn live(
    State(d): State<Dashboard>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let who = d.who(&headers)?;
    let (events, status) = (
        request(&who, "WatchEvents", pb::EventWatch::default())?,
        request(&who, "WatchStatus", pb::StatusWatch { monitor: true })?,
    );
    let streams = match d.admin.watch_events(events).await {
        Ok(events) => {
            let status = d.admin.watch_status(status).await?;
            let events = events.into_inner().map(|e| sse("event", e));
            let lines = status.into_inner().map(|s| sse("status", s));
            stream::select(events, lines).boxed()
        }
        Err(e) => stream::once(async move { sse::<()>("standby", Err(e)) }).boxed(),
    };
    // The page's stream ends with the first standby line; the page reconnects.
    let until_standby = streams.scan(false, |ended, (event, last)| {
        let item = (!*ended).then_some(Ok(event));
        *ended = last;
        futures::future::ready(item)
    });
    Ok(Sse::new(until_standby).keep_alive(KeepAlive::default()))
}
