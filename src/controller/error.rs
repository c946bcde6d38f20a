//! The controller's errors, classified for the retry policy and for users.

use crate::translate::Problem;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Ingress (or a Service or Secret it uses) is invalid. Waits for a change.
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Translate { problems: Vec<Problem> },

    /// The cloud refused or failed.
    #[error("{0}")]
    Cloud(#[from] cloud::Error),

    /// The Kubernetes API refused or failed.
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },

    /// A write guarded by a `test` (or a precondition) found the object changed meanwhile.
    #[error("{action}: the Ingress changed meanwhile: {source}")]
    Changed {
        action: String,
        #[source]
        source: kube::Error,
    },

    /// A mistake in this controller, not in the input, the cloud or the API server.
    #[error("{0}")]
    Bug(String),
}

impl Error {
    pub fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }

    /// Stable and low-cardinality: the metric label, the state annotation's reason, and the
    /// first word of the Warning event.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Translate { .. } => "invalid-spec",
            Error::Cloud(e) => match e.category {
                cloud::ErrorCategory::User => "cloud-user",
                cloud::ErrorCategory::RateLimited => "cloud-rate-limited",
                cloud::ErrorCategory::Transient => "cloud-transient",
                cloud::ErrorCategory::Conflict => "cloud-conflict",
                cloud::ErrorCategory::Bug => "cloud-bug",
                cloud::ErrorCategory::Fenced => "not-leader",
            },
            Error::Kube { .. } | Error::Changed { .. } => "kubernetes",
            Error::Bug(_) => "bug",
        }
    }

    /// This replica may no longer write: it is stopping, and tells nobody.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Error::Cloud(e) if e.category == cloud::ErrorCategory::Fenced)
    }

    /// The API server refused a write as too large or invalid (the annotations' size limit).
    pub fn is_kube_too_large(&self) -> bool {
        matches!(self, Error::Kube { source: kube::Error::Api(e), .. } if e.code == 422 || e.code == 413)
    }

    /// The API server refused a write because the object changed meanwhile (a failed `test`
    /// or precondition).
    pub fn is_kube_conflict(&self) -> bool {
        matches!(self, Error::Changed { .. })
            || matches!(self, Error::Kube { source: kube::Error::Api(e), .. } if e.code == 409)
    }
}
