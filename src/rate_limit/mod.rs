//! Rate limiting: token buckets for per-connection client events.
//! Must not read the clock: callers pass `now`, so decisions are testable and deterministic.

mod token_bucket;

pub use token_bucket::TokenBucket;
