//! The web endpoints. `router` is built from shared handles so tests can
//! drive it without a socket; it maps outcomes to status codes. Only an
//! SLO's page asks Prometheus for anything, through the trend source,
//! bounded in points and time.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use tokio::sync::{mpsc, oneshot};

use crate::eval::trend::TrendSource;
use crate::metrics::DaemonMetrics;
use crate::records::{Book, Context, Deployment, Maintenance, Override, RecordKind, SharedRecords};
use crate::render::json;
use crate::render::metrics::{Encoding, Format};
use crate::state::State;
use crate::web::{AuthUser, ClientIdentity};

/// A reload request; the engine answers with the outcome.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct AppState {
    pub state: Arc<State>,
    pub metrics: Arc<DaemonMetrics>,
    pub reload: mpsc::Sender<ReloadRequest>,
    /// Range queries of the SLI for an SLO's page; without it the page
    /// shows the current figures only.
    pub trends: Option<Arc<dyn TrendSource>>,
    /// The external URL's path (`""` or `/errbudget`): the pages' links
    /// start with it, and every route is served under it too, so a proxy
    /// may pass the prefix on or strip it.
    pub prefix: Arc<str>,
    /// Deploys and overrides, and who may change them.
    pub records: RecordsApi,
}

/// What the record endpoints need.
#[derive(Clone, Default)]
pub struct RecordsApi {
    pub records: SharedRecords,
    /// How clients are identified; `None`: the write endpoints answer 403.
    pub identity: Option<ClientIdentity>,
    /// Where records are saved at each change; `None`: memory only.
    pub file: Option<Arc<crate::store::RecordsFile>>,
}

pub fn router(app: AppState) -> Router {
    let cache = Arc::new(crate::render::metrics::Cache::default());
    let routes = Router::new()
        .route("/", get(index))
        .route(
            "/metrics",
            get(move |app, headers| metrics(app, headers, cache.clone())),
        )
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .route("/api/v1/slos", get(slos))
        .route(
            "/api/v1/deployments",
            get(list_deployments).post(create::<Deployment>),
        )
        .route(
            "/api/v1/overrides",
            get(list_overrides).post(create::<Override>),
        )
        .route("/api/v1/overrides/{id}", delete(end_override))
        .route("/api/v1/periods", get(list_periods))
        .route(
            "/api/v1/exclusions",
            get(list_maintenance).post(create::<Maintenance>),
        )
        .route("/api/v1/exclusions/{id}", delete(end_maintenance))
        .route("/slo/{service}/{slo}", get(slo_page));
    let prefix = app.prefix.clone();
    if prefix.is_empty() {
        return routes.with_state(app);
    }
    // A nested "/" answers at `/errbudget` only; `/errbudget/` is the
    // address people are given.
    Router::new()
        .route(&format!("{prefix}/"), get(index))
        .nest(&prefix, routes.clone())
        .merge(routes)
        .with_state(app)
}

async fn metrics(
    AxState(app): AxState<AppState>,
    headers: HeaderMap,
    cache: Arc<crate::render::metrics::Cache>,
) -> Response {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(header(header::ACCEPT));
    let encoding = Encoding::negotiate(header(header::ACCEPT_ENCODING));
    tracing::debug!(
        format = format.name(),
        gzip = encoding == Encoding::Gzip,
        user_agent = header(header::USER_AGENT).unwrap_or(""),
        "metrics scraped"
    );
    match cache
        .scrape(&app.metrics, &app.state.snapshot(), format, encoding)
        .await
    {
        Ok(answer) => {
            let body = Body::from_stream(futures::stream::iter(
                answer
                    .chunks
                    .into_iter()
                    .map(Ok::<_, std::convert::Infallible>),
            ));
            let mut response = (
                [
                    (header::CONTENT_TYPE, format.content_type()),
                    // Caches keep the gzip and the plain answer apart.
                    (header::VARY, "accept-encoding"),
                ],
                body,
            )
                .into_response();
            if answer.encoding == Encoding::Gzip {
                response.headers_mut().insert(
                    header::CONTENT_ENCODING,
                    axum::http::HeaderValue::from_static("gzip"),
                );
            }
            response
        }
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

/// `?service=` and `?slo=` narrow the list, so a release gate of one
/// service reads its own SLOs, not every SLO of the daemon.
#[derive(Debug, Default, serde::Deserialize)]
struct SloFilter {
    service: Option<String>,
    slo: Option<String>,
}

impl SloFilter {
    /// The query names this SLO, or says nothing of it.
    fn keeps(&self, service: &str, slo: &str) -> bool {
        self.service.as_deref().is_none_or(|w| w == service)
            && self.slo.as_deref().is_none_or(|w| w == slo)
    }
}

/// Closed calendar periods, oldest first; `?service=` and `?slo=` narrow
/// them as for `/api/v1/slos`.
async fn list_periods(
    AxState(app): AxState<AppState>,
    Query(filter): Query<SloFilter>,
) -> Json<serde_json::Value> {
    let list: Vec<serde_json::Value> = app.records.records.read(|b| {
        b.periods
            .iter()
            .filter(|c| filter.keeps(&c.service, &c.slo))
            .map(crate::records::closed_to_json)
            .collect()
    });
    Json(serde_json::json!({"periods": list}))
}

async fn slos(
    AxState(app): AxState<AppState>,
    Query(filter): Query<SloFilter>,
) -> Json<serde_json::Value> {
    let mut doc = json::snapshot_json_of(&app.state.snapshot(), |i| {
        filter.keeps(&i.slo.service, &i.slo.name)
    });
    let now = crate::time::unix_now();
    app.records
        .records
        .read(|book| json::add_overrides(&mut doc, book, now));
    Json(doc)
}

/// A record kind the API keeps in the book.
pub trait Kept: RecordKind + Send + 'static {
    /// Adds the record; false when the book holds it already.
    fn keep(&self, book: &mut Book) -> bool;
}

impl Kept for Deployment {
    fn keep(&self, book: &mut Book) -> bool {
        book.add_deployment(self.clone())
    }
}

impl Kept for Maintenance {
    fn keep(&self, book: &mut Book) -> bool {
        book.add_maintenance(self.clone());
        true
    }
}

impl Kept for Override {
    fn keep(&self, book: &mut Book) -> bool {
        book.add_override(self.clone());
        true
    }
}

fn message(status: StatusCode, text: impl std::fmt::Display) -> Response {
    (status, Json(serde_json::json!({"error": text.to_string()}))).into_response()
}

/// The user a write is recorded under, or the answer refusing it.
fn writer(api: &RecordsApi, user: Option<&AuthUser>) -> Result<String, (StatusCode, &'static str)> {
    match (api.identity, user) {
        (None, _) => Err((
            StatusCode::FORBIDDEN,
            "this endpoint changes records and needs authenticated clients: set basic_auth_users, or tls_server_config.client_auth_type RequireAndVerifyClientCert, in the web config (--web.config.file)",
        )),
        (Some(ClientIdentity::BasicAuth), Some(u)) => Ok(u.0.clone()),
        (Some(ClientIdentity::BasicAuth), None) => {
            Err((StatusCode::UNAUTHORIZED, "no authenticated user"))
        }
        (Some(ClientIdentity::ClientCertificate), _) => Ok("client-certificate".into()),
    }
}

/// Saves the records after a change. A failed save keeps the change in
/// memory and says so in the log; the loop saves again at its next write.
async fn save(api: &RecordsApi) {
    let Some(file) = api.file.clone() else {
        return;
    };
    let records = api.records.clone();
    let saved = tokio::task::spawn_blocking(move || file.save(&records)).await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the records file"),
        Err(e) => tracing::warn!(error = %e, "the records file write did not finish"),
    }
}

/// `POST` of any record kind: 201 with the record, 200 with it when the
/// book held it already (a retried request), 400 naming the bad field.
async fn create<K: Kept>(
    AxState(app): AxState<AppState>,
    user: Option<axum::Extension<AuthUser>>,
    body: axum::body::Bytes,
) -> Response {
    let user = match writer(&app.records, user.as_ref().map(|u| &u.0)) {
        Ok(u) => u,
        Err((status, why)) => return message(status, why),
    };
    let body: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return message(StatusCode::BAD_REQUEST, format!("body: not JSON: {e}")),
    };
    let policy = app.records.records.policy();
    let ctx = Context {
        now: crate::time::unix_now(),
        user: &user,
        policy: &*policy,
        id: new_id(),
    };
    let record = match K::from_request(&body, &ctx) {
        Ok(r) => r,
        Err(e) => return message(StatusCode::BAD_REQUEST, e),
    };
    let added = app.records.records.write(|b| record.keep(b));
    if added {
        save(&app.records).await;
    }
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(record.to_json())).into_response()
}

/// 16 hex digits from the clock and a counter: unique within a daemon and
/// across its restarts, short enough to type into a `DELETE`.
fn new_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{:016x}", nanos.wrapping_add(n))
}

#[derive(Debug, Default, serde::Deserialize)]
struct DeploymentFilter {
    service: Option<String>,
    since: Option<String>,
}

/// Deploys, oldest first, each with the budget its service's SLO
/// instances spent in the hour after it (once that hour is over).
async fn list_deployments(
    AxState(app): AxState<AppState>,
    Query(filter): Query<DeploymentFilter>,
) -> Response {
    let since = match filter.since.as_deref().map(str::trim) {
        None | Some("") => i64::MIN,
        Some(s) => match crate::time::parse_rfc3339(s) {
            Some(t) => t,
            None => {
                return message(
                    StatusCode::BAD_REQUEST,
                    format!("since: {s:?} is not an RFC 3339 time (2026-12-03T10:02:00Z)"),
                )
            }
        },
    };
    let list: Vec<serde_json::Value> = app.records.records.read(|b| {
        b.deployments
            .iter()
            .filter(|d| filter.service.as_deref().is_none_or(|s| s == d.service))
            .filter(|d| d.at >= since)
            .map(|d| {
                let mut v = d.to_json();
                let impact: Vec<serde_json::Value> = b
                    .impact
                    .get(&(d.service.clone(), d.version.clone(), d.at))
                    .into_iter()
                    .flatten()
                    .map(|i| {
                        serde_json::json!({
                            "slo": i.slo,
                            "labels": i.labels,
                            "budget_consumed_ratio": serde_json::Value::from(i.budget_consumed_ratio),
                        })
                    })
                    .collect();
                v["slos"] = impact.into();
                v
            })
            .collect()
    });
    Json(serde_json::json!({"deployments": list})).into_response()
}

async fn list_overrides(AxState(app): AxState<AppState>) -> Response {
    let now = crate::time::unix_now();
    let list: Vec<serde_json::Value> = app.records.records.read(|b| {
        b.overrides
            .iter()
            .map(|o| {
                let mut v = o.to_json();
                v["active"] = o.active_at(now).into();
                v
            })
            .collect()
    });
    Json(serde_json::json!({"overrides": list})).into_response()
}

async fn list_maintenance(AxState(app): AxState<AppState>) -> Response {
    let list: Vec<serde_json::Value> = app
        .records
        .records
        .read(|b| b.maintenance.iter().map(|m| m.to_json()).collect());
    Json(serde_json::json!({"exclusions": list})).into_response()
}

/// Ends a maintenance window: one under way at the next 5-minute
/// boundary, any other at once.
async fn end_maintenance(
    AxState(app): AxState<AppState>,
    user: Option<axum::Extension<AuthUser>>,
    Path(id): Path<String>,
) -> Response {
    if let Err((status, why)) = writer(&app.records, user.as_ref().map(|u| &u.0)) {
        return message(status, why);
    }
    let now = crate::time::unix_now();
    if !app.records.records.write(|b| b.end_maintenance(&id, now)) {
        return message(
            StatusCode::NOT_FOUND,
            format!("no maintenance window {id:?} made through the API"),
        );
    }
    save(&app.records).await;
    let record = app.records.records.read(|b| {
        b.maintenance
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.to_json())
    });
    Json(record.unwrap_or_else(|| serde_json::json!({"id": id, "withdrawn": true}))).into_response()
}

/// Ends an override now. Overrides from the file end by editing the file.
async fn end_override(
    AxState(app): AxState<AppState>,
    user: Option<axum::Extension<AuthUser>>,
    Path(id): Path<String>,
) -> Response {
    if let Err((status, why)) = writer(&app.records, user.as_ref().map(|u| &u.0)) {
        return message(status, why);
    }
    let now = crate::time::unix_now();
    let ended = app.records.records.write(|b| b.end_override(&id, now));
    if !ended {
        return message(
            StatusCode::NOT_FOUND,
            format!("no running override {id:?} made through the API"),
        );
    }
    save(&app.records).await;
    let record = app
        .records
        .records
        .read(|b| b.overrides.iter().find(|o| o.id == id).map(|o| o.to_json()));
    Json(record.unwrap_or_default()).into_response()
}

async fn index(AxState(app): AxState<AppState>) -> Html<String> {
    Html(crate::render::pages::overview(
        &app.state.snapshot(),
        &app.prefix,
    ))
}

/// One SLO's page. The path segments arrive percent-decoded, so they
/// compare with the spec's names as written.
async fn slo_page(
    AxState(app): AxState<AppState>,
    Path((service, slo)): Path<(String, String)>,
) -> Response {
    let snapshot = app.state.snapshot();
    let instances: Vec<_> = snapshot
        .instances
        .iter()
        .filter(|i| i.slo.service == service && i.slo.name == slo)
        .collect();
    let Some(first) = instances.first() else {
        let path = crate::render::pages::slo_path(&service, &slo);
        return (
            StatusCode::NOT_FOUND,
            Html(crate::render::pages::not_found(&path, &app.prefix)),
        )
            .into_response();
    };
    type Told = (
        Vec<(i64, String)>,
        Vec<crate::state::ClosedPeriod>,
        Vec<crate::records::Maintenance>,
    );
    let (deploys, closed, maintenance): Told = app.records.records.read(|b| {
        (
            b.deployments_of(&service, i64::MIN, i64::MAX)
                .map(|d| (d.at, d.version.clone()))
                .collect(),
            b.periods
                .iter()
                .filter(|c| c.service == service && c.slo == slo)
                .cloned()
                .collect(),
            b.maintenance
                .iter()
                .filter(|m| m.covers(&service, &slo))
                .cloned()
                .collect(),
        )
    });
    // The history ends where the figures were taken, so the two agree.
    // Windows told at run time leave their events out of the chart too,
    // as they do out of the figures.
    let charted = if maintenance.is_empty() {
        first.slo.clone()
    } else {
        let mut slo = (*first.slo).clone();
        slo.exclusions
            .extend(maintenance.iter().map(|m| m.exclusion.clone()));
        Arc::new(slo)
    };
    let trend = match (&app.trends, snapshot.evaluated_at) {
        (Some(source), Some(at)) => Some(source.trend(charted, at).await),
        _ => None,
    };
    // The page says why in words; the error's type ends here.
    let trend = trend.map(|t| {
        t.map_err(|e| {
            let why = crate::diag::chain(&e);
            tracing::warn!(service, slo, error = %why, "no history for the SLO page");
            why
        })
    });
    let mut html = crate::render::pages::slo_page(
        &instances,
        snapshot.evaluated_at,
        trend,
        &deploys,
        &app.prefix,
    );
    crate::render::pages::told_maintenance(&mut html, &maintenance);
    crate::render::pages::closed_periods(&mut html, &closed);
    Html(html).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Trend;
    use crate::eval::trend::TrendError;
    use crate::model::test_slo;
    use crate::state::{LabelSet, Snapshot, Status};
    use futures::future::BoxFuture;

    /// Answers every SLO with the same two-step trend, recording the time
    /// it was asked for.
    struct FixedTrend(std::sync::Mutex<Vec<i64>>);

    impl TrendSource for FixedTrend {
        fn trend(
            &self,
            _: Arc<crate::model::Slo>,
            now: i64,
        ) -> BoxFuture<'static, Result<Trend, TrendError>> {
            if let Ok(mut v) = self.0.lock() {
                v.push(now);
            }
            Box::pin(async move {
                Ok(Trend {
                    start: now - 120,
                    end: now,
                    step: 60,
                    points: vec![
                        (now - 60, crate::budget::Events::new(1.0, 100.0)),
                        (now, crate::budget::Events::new(0.0, 100.0)),
                    ],
                })
            })
        }
    }

    async fn serve(app: AppState) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(app)).await });
        addr
    }

    #[tokio::test]
    async fn slo_pages_by_encoded_name_and_404_for_unknown() {
        let state = Arc::new(State::new());
        let slo = Arc::new(test_slo("check out", "<avail>", 99.9, 30));
        state.publish(Snapshot::default().next(
            5_000,
            vec![(
                slo,
                Ok(vec![(
                    LabelSet::new(),
                    Status::Ok,
                    crate::render::pages::test_figures(0.5, false),
                )]),
            )],
        ));
        let asked = Arc::new(FixedTrend(std::sync::Mutex::new(vec![])));
        let (reload, _rx) = mpsc::channel(1);
        let addr = serve(AppState {
            state,
            metrics: Arc::new(DaemonMetrics::new()),
            reload,
            trends: Some(asked.clone()),
            prefix: "".into(),
            records: RecordsApi::default(),
        })
        .await;
        let get = |path: &'static str| async move {
            let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        };
        let (status, body) = get("/").await;
        assert_eq!(status, 200);
        assert!(
            body.contains("href=\"/slo/check%20out/%3Cavail%3E\""),
            "{body}"
        );
        let (status, body) = get("/slo/check%20out/%3Cavail%3E").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("check out / &lt;avail&gt;"), "{body}");
        assert_eq!(body.matches("<svg ").count(), 2);
        // The history ends at the evaluation the figures come from.
        assert_eq!(*asked.0.lock().unwrap(), vec![5_000]);
        let (status, body) = get("/slo/check%20out/nope").await;
        assert_eq!(status, 404);
        assert!(body.contains("SLO not found"));
    }

    #[tokio::test]
    async fn the_slo_list_narrows_to_a_service_and_slo() {
        let state = Arc::new(State::new());
        let one = |service: &str, name: &str| {
            (
                Arc::new(test_slo(service, name, 99.9, 30)),
                Ok(vec![(
                    LabelSet::new(),
                    Status::Ok,
                    crate::render::pages::test_figures(0.5, false),
                )]),
            )
        };
        state.publish(
            Snapshot::default().next(5_000, vec![one("a b", "x"), one("a b", "y"), one("c", "x")]),
        );
        let (reload, _rx) = mpsc::channel(1);
        let addr = serve(AppState {
            state,
            metrics: Arc::new(DaemonMetrics::new()),
            reload,
            trends: None,
            prefix: "".into(),
            records: RecordsApi::default(),
        })
        .await;
        let names = |query: &'static str| async move {
            let doc: serde_json::Value = reqwest::get(format!("http://{addr}/api/v1/slos{query}"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            doc["slos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    format!(
                        "{}/{}",
                        s["service"].as_str().unwrap(),
                        s["slo"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(names("").await, ["a b/x", "a b/y", "c/x"]);
        assert_eq!(names("?service=a%20b").await, ["a b/x", "a b/y"]);
        assert_eq!(names("?service=a+b&slo=y").await, ["a b/y"]);
        assert_eq!(names("?slo=x").await, ["a b/x", "c/x"]);
        assert!(names("?service=nope").await.is_empty());
    }

    #[tokio::test]
    async fn metrics_are_gzipped_only_for_scrapers_that_accept_it() {
        let state = Arc::new(State::new());
        state.publish(Snapshot::default().next(
            5_000,
            vec![(
                Arc::new(test_slo("checkout", "avail", 99.9, 30)),
                Ok(vec![(
                    LabelSet::new(),
                    Status::Ok,
                    crate::render::pages::test_figures(0.5, false),
                )]),
            )],
        ));
        let (reload, _rx) = mpsc::channel(1);
        let addr = serve(AppState {
            state,
            metrics: Arc::new(DaemonMetrics::new()),
            reload,
            trends: None,
            prefix: "".into(),
            records: RecordsApi::default(),
        })
        .await;
        // reqwest is built without its gzip feature: it sends the header
        // as given and hands back the body as it came.
        let get = |path: &'static str, accept_encoding: Option<&'static str>| async move {
            let mut req = reqwest::Client::new().get(format!("http://{addr}{path}"));
            if let Some(e) = accept_encoding {
                req = req.header("accept-encoding", e);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            let header = |name| {
                r.headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
            };
            let (encoding, vary) = (header("content-encoding"), header("vary"));
            (encoding, vary, r.bytes().await.unwrap())
        };
        let steady = |body: &str| -> Vec<String> {
            body.lines()
                .filter(|l| !l.contains("process_"))
                .map(str::to_string)
                .collect()
        };
        let (encoding, vary, plain) = get("/metrics", None).await;
        assert_eq!(encoding, None);
        assert_eq!(vary.as_deref(), Some("accept-encoding"));
        let plain = String::from_utf8(plain.to_vec()).unwrap();
        assert!(plain.contains("slo_objective_ratio{service=\"checkout\",slo=\"avail\"} 0.999"));
        let (encoding, _, refused) = get("/metrics", Some("gzip;q=0, br")).await;
        assert_eq!(encoding, None);
        assert_eq!(steady(&String::from_utf8_lossy(&refused)), steady(&plain));
        let (encoding, vary, gz) = get("/metrics", Some("gzip")).await;
        assert_eq!(encoding.as_deref(), Some("gzip"));
        assert_eq!(vary.as_deref(), Some("accept-encoding"));
        let mut unzipped = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped)
            .unwrap();
        assert_eq!(steady(&unzipped), steady(&plain));
        // The other endpoints answer as they are.
        let (encoding, _, body) = get("/-/healthy", Some("gzip")).await;
        assert_eq!((encoding, &body[..]), (None, &b"OK\n"[..]));
    }
}
