//! Pusher error and close codes, and what each tells a client to do.
//! The only place in the crate where a numeric `4xxx` code may appear.

/// A Pusher error code, sent in `pusher:error` and, when the socket closes, as the close code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The app only accepts TLS connections.
    TlsOnly,
    /// No app has the requested key.
    AppNotFound,
    /// The app is disabled.
    AppDisabled,
    /// The app is over its connection quota.
    OverConnectionQuota,
    /// The path does not name an app.
    PathNotFound,
    /// The `protocol` parameter is not a number.
    InvalidVersionFormat,
    /// The `protocol` version is not supported.
    UnsupportedProtocol,
    /// No `protocol` parameter was given.
    NoProtocol,
    /// The connection (or a subscription or signin on it) is not authorized.
    Unauthorized,
    /// The server is over capacity; reconnect after a back-off.
    OverCapacity,
    /// Generic "reconnect immediately" (server draining).
    ReconnectImmediately,
    /// The client did not answer a ping in time.
    PongNotReceived,
    /// Closed after inactivity.
    ClosedAfterInactivity,
    /// A client event was rejected (rate limit, disabled, not allowed).
    ClientEventRejected,
    /// The signin watchlist was longer than allowed; the first ids were kept.
    WatchlistLimitExceeded,
}

/// What pusher-js does when a socket closes with a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconnectPolicy {
    /// Do not reconnect with the same parameters (4000–4099).
    Never,
    /// Reconnect after a back-off of at least one second (4100–4199).
    Backoff,
    /// Reconnect at once (4200–4299).
    Immediately,
    /// Codes not meant to close a socket (4300–4399).
    NotAClose,
}

impl ErrorCode {
    /// The numeric code on the wire.
    pub const fn code(self) -> u16 {
        match self {
            Self::TlsOnly => 4000,
            Self::AppNotFound => 4001,
            Self::AppDisabled => 4003,
            Self::OverConnectionQuota => 4004,
            Self::PathNotFound => 4005,
            Self::InvalidVersionFormat => 4006,
            Self::UnsupportedProtocol => 4007,
            Self::NoProtocol => 4008,
            Self::Unauthorized => 4009,
            Self::OverCapacity => 4100,
            Self::ReconnectImmediately => 4200,
            Self::PongNotReceived => 4201,
            Self::ClosedAfterInactivity => 4202,
            Self::ClientEventRejected => 4301,
            Self::WatchlistLimitExceeded => 4302,
        }
    }

    /// The reconnect band the code belongs to.
    pub const fn policy(self) -> ReconnectPolicy {
        match self.code() {
            4000..=4099 => ReconnectPolicy::Never,
            4100..=4199 => ReconnectPolicy::Backoff,
            4200..=4299 => ReconnectPolicy::Immediately,
            _ => ReconnectPolicy::NotAClose,
        }
    }

    /// The code for a numeric value, if it is one Herald uses.
    pub fn from_code(code: u16) -> Option<Self> {
        ALL.iter().copied().find(|c| c.code() == code)
    }
}

/// Every code, for lookups and tests.
pub(crate) const ALL: [ErrorCode; 15] = [
    ErrorCode::TlsOnly,
    ErrorCode::AppNotFound,
    ErrorCode::AppDisabled,
    ErrorCode::OverConnectionQuota,
    ErrorCode::PathNotFound,
    ErrorCode::InvalidVersionFormat,
    ErrorCode::UnsupportedProtocol,
    ErrorCode::NoProtocol,
    ErrorCode::Unauthorized,
    ErrorCode::OverCapacity,
    ErrorCode::ReconnectImmediately,
    ErrorCode::PongNotReceived,
    ErrorCode::ClosedAfterInactivity,
    ErrorCode::ClientEventRejected,
    ErrorCode::WatchlistLimitExceeded,
];

/// WebSocket close code for a message larger than the server accepts (RFC 6455).
pub const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;

/// The `type` and `status` of a `pusher:subscription_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionErrorKind {
    /// Missing or wrong signature, or not signed in.
    AuthError,
    /// The channel or its data is malformed.
    BadRequest,
    /// A presence channel is full.
    LimitReached,
    /// The cluster could not decide the subscription now (its shared state is unreachable).
    Unavailable,
}

impl SubscriptionErrorKind {
    /// The `type` field.
    pub const fn type_name(self) -> &'static str {
        match self {
            Self::AuthError => "AuthError",
            Self::BadRequest => "BadRequest",
            Self::LimitReached => "LimitReached",
            Self::Unavailable => "ServiceUnavailable",
        }
    }

    /// The `status` field (HTTP-like for auth and request errors, the Pusher code for limits).
    pub const fn status(self) -> u16 {
        match self {
            Self::AuthError => 401,
            Self::BadRequest => 400,
            Self::LimitReached => ErrorCode::OverCapacity.code(),
            Self::Unavailable => 503,
        }
    }

    /// The code of the `pusher:error` sent alongside.
    pub const fn error_code(self) -> ErrorCode {
        match self {
            Self::AuthError | Self::BadRequest => ErrorCode::Unauthorized,
            Self::LimitReached | Self::Unavailable => ErrorCode::OverCapacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands() {
        assert_eq!(ErrorCode::AppNotFound.policy(), ReconnectPolicy::Never);
        assert_eq!(ErrorCode::OverCapacity.policy(), ReconnectPolicy::Backoff);
        assert_eq!(ErrorCode::ReconnectImmediately.policy(), ReconnectPolicy::Immediately);
        assert_eq!(ErrorCode::PongNotReceived.policy(), ReconnectPolicy::Immediately);
        assert_eq!(ErrorCode::ClientEventRejected.policy(), ReconnectPolicy::NotAClose);
    }

    #[test]
    fn codes_round_trip_and_are_unique() {
        for c in ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
        }
        assert_eq!(ErrorCode::from_code(4002), None);
    }
}
