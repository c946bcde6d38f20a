//! Access tokens for the Compute API, behind a small trait so tests never reach Google.

use crate::Error;
use async_trait::async_trait;
use std::sync::Arc;

/// The OAuth scope the provider needs: read and write Compute resources.
pub const COMPUTE_SCOPE: &str = "https://www.googleapis.com/auth/compute";

/// Supplies bearer tokens. Implementations cache; callers ask before every request.
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn token(&self) -> Result<String, Error>;
}

/// A fixed token: for the fake API, or for a token minted elsewhere.
pub struct StaticToken(pub String);

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<String, Error> {
        Ok(self.0.clone())
    }
}

/// Tokens from Google's credential chain (`GOOGLE_APPLICATION_CREDENTIALS`, the gcloud
/// application-default file, or the metadata server, i.e. Workload Identity on GKE).
///
/// Built only by the production binary: [`GoogleTokens::discover`] probes the metadata server
/// and may run the gcloud CLI, which tests must never do.
pub struct GoogleTokens {
    provider: Arc<dyn gcp_auth::TokenProvider>,
}

impl GoogleTokens {
    /// Finds credentials the way Google's client libraries do.
    pub async fn discover() -> Result<Self, Error> {
        let provider = gcp_auth::provider()
            .await
            .map_err(|e| Error::user(format!("no Google Cloud credentials found: {e}")).with_source(e))?;
        Ok(Self { provider })
    }

    /// The project of the credentials, when the project is not configured.
    pub async fn project_id(&self) -> Result<String, Error> {
        self.provider
            .project_id()
            .await
            .map(|p| p.to_string())
            .map_err(|e| {
                Error::user(format!(
                    "cannot tell the Google Cloud project from the credentials: {e}"
                ))
            })
    }
}

#[async_trait]
impl TokenSource for GoogleTokens {
    async fn token(&self) -> Result<String, Error> {
        let token = self
            .provider
            .token(&[COMPUTE_SCOPE])
            .await
            .map_err(|e| Error::transient(format!("getting an access token: {e}")).with_source(e))?;
        Ok(token.as_str().to_owned())
    }
}
