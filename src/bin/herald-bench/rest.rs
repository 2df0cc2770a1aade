//! A signed Pusher REST client on one keep-alive HTTP/1.1 connection, reconnecting when the
//! server closes it. Must not resend a request that may have reached the server: triggers are
//! not idempotent, so only a request the connection never took is retried.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald::protocol::signature;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

use crate::Result;
use crate::net::{STEP_TIMEOUT, Target};

/// One publisher's connection to the REST API.
pub(crate) struct Rest {
    target: Target,
    /// Which source address this client binds (see [`Target::tcp`]).
    slot: usize,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// TCP connections opened so far (1 for a server that keeps connections alive).
    pub(crate) connects: u64,
}

impl Rest {
    pub(crate) fn new(target: Target, slot: usize) -> Self {
        Self { target, slot, sender: None, connects: 0 }
    }

    /// `POST /apps/{id}/events` with `data` to `channels`; returns the HTTP status.
    pub(crate) async fn trigger(&mut self, channels: &[&str], event: &str, data: &str) -> Result<u16> {
        let body = serde_json::json!({ "name": event, "channels": channels, "data": data }).to_string();
        let request = self.signed(Method::POST, "events", Bytes::from(body))?;
        self.send(request).await
    }

    fn signed(&self, method: Method, sub_path: &str, body: Bytes) -> Result<Request<Full<Bytes>>> {
        let t = &self.target;
        let path = format!("/apps/{}/{sub_path}", t.app_id);
        // A clock before 1970 signs timestamp 0, which the server refuses: reported as a 401.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let params = vec![
            ("auth_key".to_owned(), t.key.clone()),
            ("auth_timestamp".to_owned(), now.to_string()),
            ("auth_version".to_owned(), "1.0".to_owned()),
            ("body_md5".to_owned(), signature::body_md5(&body)),
        ];
        let sig = signature::sign(&t.secret, &signature::rest_string(method.as_str(), &path, &params));
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let uri = format!("{}{path}?{}&auth_signature={sig}", t.prefix, query.join("&"));
        Ok(Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, t.authority.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))?)
    }

    async fn send(&mut self, mut request: Request<Full<Bytes>>) -> Result<u16> {
        for _ in 0..2 {
            let sender = self.ready().await?;
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // The body must be read for the connection to be reused.
                    response.into_body().collect().await?;
                    return Ok(status);
                }
                Err(mut e) => {
                    self.sender = None;
                    match e.take_message() {
                        // The connection closed before taking it: safe to send on a new one.
                        Some(r) => request = r,
                        None => return Err(e.into_error().into()),
                    }
                }
            }
        }
        Err("connection closed twice before a request could be sent".into())
    }

    /// A connection ready for the next request, opening one if the last was closed.
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        if let Some(s) = &mut self.sender
            && s.ready().await.is_err()
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            let tcp = self.target.tcp(self.slot).await?;
            let handshake = http1::handshake(TokioIo::new(tcp));
            let (sender, conn) = tokio::time::timeout(STEP_TIMEOUT, handshake).await.map_err(|_| "http timeout")??;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.connects += 1;
            self.sender = Some(sender);
        }
        // unwrap: set just above when it was empty.
        Ok(self.sender.as_mut().unwrap())
    }
}
