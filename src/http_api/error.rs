//! Every way a REST API request can fail, and the one place they become HTTP statuses.
//! Must not log or format secrets, signatures or payloads; infrastructure details stay in
//! `source()` and never reach the response body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::apps::AppStoreError;
use crate::cluster::ClusterError;
use crate::metrics::Rejection;

/// Why a request's signature check failed (all answered with 401).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `auth_key` parameter.
    #[error("missing auth_key")]
    MissingKey,
    /// `auth_key` is not the key of the app in the path.
    #[error("auth_key does not match the app")]
    WrongKey,
    /// `auth_version` is present and not `1.0`.
    #[error("unsupported auth_version")]
    UnsupportedVersion,
    /// No `auth_timestamp` parameter.
    #[error("missing auth_timestamp")]
    MissingTimestamp,
    /// `auth_timestamp` is not a number of seconds.
    #[error("invalid auth_timestamp")]
    InvalidTimestamp,
    /// `auth_timestamp` is outside the accepted clock skew.
    #[error("auth_timestamp is outside the accepted window of {window_secs} seconds")]
    StaleTimestamp {
        /// The accepted skew, in seconds.
        window_secs: u64,
    },
    /// The body is non-empty and `body_md5` is missing.
    #[error("missing body_md5")]
    MissingBodyMd5,
    /// `body_md5` is not the MD5 of the body received.
    #[error("body_md5 does not match the body")]
    BodyMd5Mismatch,
    /// No `auth_signature` parameter.
    #[error("missing auth_signature")]
    MissingSignature,
    /// The signature does not match the request.
    #[error("invalid auth_signature")]
    BadSignature,
}

/// Why a request is malformed (all answered with 400).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    /// A query parameter appears twice (the canonical string would be ambiguous).
    #[error("duplicate query parameter `{0}`")]
    DuplicateParam(String),
    /// The body could not be read from the connection.
    #[error("the request body could not be read")]
    UnreadableBody,
    /// The body is not a JSON object.
    #[error("invalid JSON: expected an object")]
    MalformedJson,
    /// A required field is absent (or `null`).
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The event name is empty.
    #[error("event name must not be empty")]
    EmptyEventName,
    /// The event name is longer than the app allows.
    #[error("event name is longer than {limit} characters")]
    EventNameTooLong {
        /// The limit, in characters.
        limit: usize,
    },
    /// Neither `channel` nor `channels` was given, or `channels` is empty.
    #[error("missing channel or channels")]
    NoChannels,
    /// Both `channel` and `channels` were given.
    #[error("give either channel or channels, not both")]
    ChannelAndChannels,
    /// More channels than one trigger may name.
    #[error("{count} channels given, the limit is {limit}")]
    TooManyChannels {
        /// Channels in the request.
        count: usize,
        /// The app's limit.
        limit: usize,
    },
    /// A channel name breaks Pusher's rules (index into the request's channel list).
    #[error("channel #{index} is not a valid channel name")]
    BadChannelName {
        /// Position of the channel in the request (0 for `channel`).
        index: usize,
    },
    /// The channel name in the path breaks Pusher's rules.
    #[error("invalid channel name")]
    BadPathChannel,
    /// `socket_id` does not match `^\d+\.\d+$`.
    #[error("invalid socket_id")]
    BadSocketId,
    /// More events than one batch may hold (the hosted service's wording).
    #[error("Batch too large ({count} > {limit})")]
    TooManyBatchEvents {
        /// Events in the request.
        count: usize,
        /// The app's limit.
        limit: usize,
    },
    /// `GET /channels?info=user_count` without a `presence-` prefix filter.
    #[error(
        "user_count may only be requested for presence channels - please supply filter_by_prefix beginning with presence-"
    )]
    UserCountNeedsPresenceFilter,
    /// `user_count` asked of a channel that is not a presence channel.
    #[error("Cannot retrieve the user count unless the channel is a presence channel")]
    UserCountOnNonPresence,
    /// The users endpoint on a channel that is not a presence channel.
    #[error("Users can only be retrieved for presence channels")]
    UsersOnNonPresence,
}

/// A failed REST API request. Converted to a response by [`ResponseError`] only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No app has the id in the path.
    #[error("unknown app")]
    AppNotFound,
    /// The app is disabled.
    #[error("app is disabled")]
    AppDisabled,
    /// The signature check failed.
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// The request is malformed.
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    /// An event's `data` is larger than the app allows (the hosted service's wording, which SDK
    /// users match on).
    #[error(
        "The data content of this event exceeds the allowed maximum ({limit} bytes). See https://pusher.com/docs/channels/server_api/http-api#publishing-events for more info"
    )]
    DataTooLarge {
        /// Size of the data, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is larger than `http_api.max_body_bytes`.
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body did not arrive within `http_api.body_timeout_secs`.
    #[error("request body was not received in time")]
    BodyTimeout,
    /// A refused item of a batch, with its position.
    #[error("batch event #{index}: {error}")]
    InBatch {
        /// Position of the item in `batch`.
        index: usize,
        /// Why it was refused.
        error: Box<ApiError>,
    },
    /// The app's daily message quota would be passed (nothing of the request was published).
    #[error("the app's daily message quota ({quota} messages) is reached")]
    QuotaReached {
        /// The quota.
        quota: u64,
    },
    /// No route under `/apps` matches.
    #[error("not found")]
    RouteNotFound,
    /// The route exists with another method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The app store failed (details only in `source`, for the log).
    #[error("service unavailable")]
    AppStore(#[from] AppStoreError),
    /// The cluster was unreachable (details only in `source`, for the log).
    #[error("service unavailable")]
    Cluster(#[from] ClusterError),
}

impl ApiError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::AppNotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::AppDisabled => StatusCode::FORBIDDEN,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::DataTooLarge { .. } | Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::QuotaReached { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::InBatch { error, .. } => error.status(),
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::AppStore(_) | Self::Cluster(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The rejection counter this error feeds, if any.
    pub fn rejection(&self) -> Option<Rejection> {
        match self {
            Self::Unauthorized(_) => Some(Rejection::ApiUnauthorized),
            Self::BadRequest(_) | Self::DataTooLarge { .. } | Self::BodyTooLarge { .. } => {
                Some(Rejection::ApiBadRequest)
            }
            Self::InBatch { error, .. } => error.rejection(),
            Self::QuotaReached { .. } => Some(Rejection::MessageQuota),
            Self::AppNotFound
            | Self::AppDisabled
            | Self::BodyTimeout
            | Self::RouteNotFound
            | Self::MethodNotAllowed
            | Self::AppStore(_)
            | Self::Cluster(_) => None,
        }
    }

    /// Whether this is an infrastructure failure (to be logged as a warning, once).
    pub fn is_internal(&self) -> bool {
        self.status().is_server_error()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status()).json(serde_json::json!({ "error": self.to_string() }))
    }
}
