//! `GET|POST /v3/jobs/<job>/service`: a running job's Consul tags and meta,
//! read or changed in place (re-registered at once, the process untouched,
//! no reload). The body of a POST is a
//! [`crate::discovery::edit::ServiceEdit`], e.g.
//! `{"addTags": ["primary"], "meta": {"role": "primary"}}`.
//!
//! Answers: 200 with `{job, id, tags, meta, registered}` once Consul has the
//! change; 400 for tags or meta Consul would refuse; 404 for an unknown job;
//! 409 for a job without `port`; 503 when Consul did not take the change yet
//! (it is kept and applied as soon as Consul answers).

use super::{State, endpoints::MAX_BODY};
use crate::discovery::edit::{EditError, ServiceEdit};
use crate::http::{self, Response};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use std::time::Duration;

/// How long a change may wait for Consul before the answer says it is
/// pending (the registration task keeps retrying after that).
const APPLY_TIMEOUT: Duration = Duration::from_secs(15);

pub(super) async fn handle(state: &State, job: &str, request: Request<Incoming>) -> Response {
    let edit = if request.method() == Method::POST {
        let body = match http::read_body(request, MAX_BODY).await {
            Ok(b) => b,
            Err(r) => return r.into_response(),
        };
        match serde_json::from_slice::<ServiceEdit>(&body) {
            Ok(edit) => edit,
            Err(e) => {
                return http::error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the body is not a service change ({e}); send e.g. \
                         {{\"addTags\": [\"primary\"], \"removeTags\": [\"replica\"], \"meta\": {{\"role\": \"primary\"}}}}"
                    ),
                );
            }
        }
    } else {
        ServiceEdit::default()
    };
    if state.common.board.get(job).is_none() {
        return state.unknown_job(job);
    }
    let Some(editor) = &state.editor else {
        return refusal(EditError::NoDiscovery);
    };
    // The registry logs the change itself.
    match tokio::time::timeout(APPLY_TIMEOUT, editor.edit_service(job, edit)).await {
        Ok(Ok(live)) => http::json(StatusCode::OK, &live),
        Ok(Err(e)) => refusal(e),
        Err(_) => refusal(EditError::Pending(format!(
            "no answer from Consul within {}s",
            APPLY_TIMEOUT.as_secs()
        ))),
    }
}

fn refusal(e: EditError) -> Response {
    let status = match &e {
        EditError::NoDiscovery | EditError::NotAdvertised(_) => StatusCode::CONFLICT,
        EditError::NoSuchJob(_) => StatusCode::NOT_FOUND,
        EditError::Invalid(_) => StatusCode::BAD_REQUEST,
        EditError::Pending(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    http::error(status, e.to_string())
}
