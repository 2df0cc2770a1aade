//! Rate limiting: token buckets for per-connection client events and inbound messages.
//! Must not read the clock: callers pass `now`, so decisions are testable and deterministic.

mod inbound;
mod token_bucket;

pub use inbound::{InboundBudget, InboundLimits, Verdict};
pub use token_bucket::TokenBucket;
