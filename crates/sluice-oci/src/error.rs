//! One error type for every registry operation, with a kind the callers map
//! to Flux's reasons. Messages name the URL, tag or digest and never hold a
//! password or token.

use std::fmt;

/// What went wrong, coarsely, for the caller's reason mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The registry refused the credentials (401/403, a failed token
    /// request). Flux: `AuthenticationFailed`.
    Auth,
    /// The repository, tag, manifest or blob does not exist (404).
    NotFound,
    /// The registry could not be reached, or answered with a server error.
    Network,
    /// The operation did not finish within the client's timeout.
    Timeout,
    /// The input is wrong: a URL, a reference, a digest, credentials,
    /// certificates, a directory to push. No retry fixes it.
    Invalid,
    /// The registry answered something that breaks the protocol: a digest
    /// that does not match, a manifest that does not parse, an unsupported
    /// media type.
    Protocol,
    /// A blob or an unpacked artifact is larger than allowed.
    TooLarge,
    /// A local file could not be read or written.
    Io,
}

/// An OCI client error: a kind and a message fit for a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, message)
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Protocol, message)
    }

    pub(crate) fn io(what: impl fmt::Display, e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{what}: {e}"))
    }

    /// Puts `context` in front of the message, keeping the kind.
    pub fn context(self, context: impl fmt::Display) -> Error {
        Error {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
