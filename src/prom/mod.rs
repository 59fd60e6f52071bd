//! Placeholder of the Prometheus client interface (replaced by the client).
use std::collections::BTreeMap;
use std::future::Future;

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(i64, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Other(String),
}

pub trait QueryApi: Send + Sync + 'static {
    fn instant(
        &self,
        query: &str,
        at: i64,
    ) -> impl Future<Output = Result<Vec<Sample>, QueryError>> + Send;
    fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step_secs: u64,
    ) -> impl Future<Output = Result<Vec<RangeSeries>, QueryError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(String);

pub struct Client;
impl Client {
    pub fn new(
        _s: &crate::config::HttpClientSettings,
        _max: usize,
        _m: std::sync::Arc<crate::metrics::DaemonMetrics>,
    ) -> Result<Client, ClientError> {
        Err(ClientError("not built".into()))
    }
}
impl QueryApi for Client {
    async fn instant(&self, _: &str, _: i64) -> Result<Vec<Sample>, QueryError> {
        Err(QueryError::Other("stub".into()))
    }
    async fn range(&self, _: &str, _: i64, _: i64, _: u64) -> Result<Vec<RangeSeries>, QueryError> {
        Err(QueryError::Other("stub".into()))
    }
}
