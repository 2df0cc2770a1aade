//! A real local HTTP receiver of webhooks: records every request, answers a chosen status to
//! the first ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use herald::protocol::signature;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{KEY, SECRET, WAIT};

/// One received webhook request.
#[derive(Debug)]
pub struct Hook {
    pub content_type: String,
    pub key: String,
    pub signature: String,
    pub body: String,
}

impl Hook {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
    pub fn events(&self) -> Vec<Value> {
        self.json()["events"].as_array().unwrap().clone()
    }
}

pub struct Receiver {
    pub url: String,
    pub hooks: mpsc::UnboundedReceiver<Hook>,
}

/// Answers `status` to the first `failures` requests, then 200.
pub async fn receiver(failures: usize, status: u16) -> Receiver {
    let (tx, hooks) = mpsc::unbounded_channel();
    let left = Arc::new(AtomicUsize::new(failures));
    let server = HttpServer::new(move || {
        let (tx, left) = (tx.clone(), left.clone());
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let (tx, left) = (tx.clone(), left.clone());
            async move {
                let h = |n: &str| req.headers().get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                let hook = Hook {
                    content_type: h("content-type"),
                    key: h("x-pusher-key"),
                    signature: h("x-pusher-signature"),
                    body: String::from_utf8(body.to_vec()).unwrap(),
                };
                let _ = tx.send(hook);
                let fail = left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                if fail {
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
                } else {
                    HttpResponse::Ok().finish()
                }
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    Receiver { url: format!("http://{addr}/hook"), hooks }
}

impl Receiver {
    pub async fn next(&mut self) -> Hook {
        tokio::time::timeout(WAIT, self.hooks.recv()).await.expect("a webhook in time").unwrap()
    }

    /// Collects events until one matches `until`; returns all of them in order.
    pub async fn events_until(&mut self, until: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let hook = self.next().await;
            assert_valid(&hook);
            for e in hook.events() {
                let stop = until(&e);
                all.push(e);
                if stop {
                    return all;
                }
            }
        }
    }
}

pub fn assert_valid(hook: &Hook) {
    assert_eq!(hook.content_type, "application/json");
    assert_eq!(hook.key, KEY);
    assert_eq!(hook.signature, signature::sign_bytes(SECRET, hook.body.as_bytes()), "signature over the exact body");
    assert!(hook.json()["time_ms"].as_u64().unwrap() > 1_600_000_000_000);
}
