//! The web endpoints. `router` is built from shared handles so tests can
//! drive it without a socket; it maps outcomes to status codes and
//! never queries Prometheus.

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::DaemonMetrics;
use crate::output;
use crate::state::State;

/// A reload request; the engine answers with the outcome.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct AppState {
    pub state: Arc<State>,
    pub metrics: Arc<DaemonMetrics>,
    pub reload: mpsc::Sender<ReloadRequest>,
}

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .route("/api/v1/slos", get(slos))
        .with_state(app)
}

async fn metrics(AxState(app): AxState<AppState>) -> Response {
    match crate::exposition::render(&app.metrics, &app.state.snapshot()) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn ready(AxState(app): AxState<AppState>) -> Response {
    if app.state.is_ready() {
        (StatusCode::OK, "Ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Waiting for the first evaluation\n",
        )
            .into_response()
    }
}

async fn reload(AxState(app): AxState<AppState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if app.reload.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(())) => (StatusCode::OK, "config reloaded\n").into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("config rejected, previous config kept:\n{e}\n"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn slos(AxState(app): AxState<AppState>) -> Json<serde_json::Value> {
    Json(output::snapshot_json(&app.state.snapshot()))
}

async fn index(AxState(app): AxState<AppState>) -> Html<String> {
    Html(crate::pages::overview(&app.state.snapshot()))
}
