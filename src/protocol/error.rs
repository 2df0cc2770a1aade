//! Why a client frame, a name or an id was refused.
//! Must not decide what goes on the wire: `connection/` and `http_api/` map these.

/// A protocol-level validation failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is not a JSON object with a string `event`.
    #[error("Invalid message format: {0}")]
    Malformed(String),
    /// A required field is missing (or `null`).
    #[error("Missing field `{0}`")]
    MissingField(&'static str),
    /// A field is present with the wrong JSON type.
    #[error("Field `{field}` must be {expected}")]
    WrongType {
        /// The field, as named on the wire.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The channel name is empty, too long or has a forbidden character.
    #[error("invalid channel name")]
    BadChannelName,
    /// The event name is empty or too long.
    #[error("invalid event name")]
    BadEventName,
    /// The event data is larger than the app allows.
    #[error("event data is {size} bytes, above the limit of {limit}")]
    DataTooLarge {
        /// Size of the data, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A socket id does not match `^\d+\.\d+$`.
    #[error("invalid socket id")]
    BadSocketId,
    /// Presence `channel_data` is not valid.
    #[error("Invalid channel_data: {0}")]
    BadChannelData(&'static str),
    /// Signin `user_data` is not valid.
    #[error("Invalid user_data: {0}")]
    BadUserData(&'static str),
}
