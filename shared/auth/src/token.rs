//! Bearer tokens: the claims a staff JWT carries, verifying them (issuer,
//! audience, expiry, not-before, signature) and minting them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::Role;

/// The claims of a staff token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// Staff id.
    pub sub: String,
    pub role: Role,
    /// Department code (e.g. `after_sales`); may be empty for roles that are not tied to one.
    #[serde(default)]
    pub department: String,
    pub iss: String,
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch.
    pub nbf: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
}

impl Claims {
    /// Claims for `staff`, valid from now for `ttl`.
    pub fn new(staff: &Staff, issuer: &str, audience: &str, ttl: Duration) -> Self {
        let now = now_secs();
        Self {
            sub: staff.id.clone(),
            role: staff.role,
            department: staff.department.clone(),
            iss: issuer.to_string(),
            aud: audience.to_string(),
            exp: now + ttl.as_secs(),
            nbf: now,
            iat: now,
        }
    }
}

/// The verified caller, put into every authenticated request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub id: String,
    pub role: Role,
    pub department: String,
}

impl Staff {
    pub fn new(id: impl Into<String>, role: Role, department: impl Into<String>) -> Self {
        Self { id: id.into(), role, department: department.into() }
    }
}

/// Why a token is refused. Messages say what is wrong and never include key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token: send the metadata `authorization: Bearer <JWT>`")]
    Missing,
    #[error("the authorization metadata is not `Bearer <JWT>`")]
    NotBearer,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("the token's signature does not verify with this service's key")]
    BadSignature,
    #[error("the token is signed with {found}, this service accepts {expected}")]
    WrongAlgorithm { found: String, expected: String },
    #[error("the token's issuer is not {expected:?}")]
    WrongIssuer { expected: String },
    #[error("the token's audience is not {expected:?}")]
    WrongAudience { expected: String },
    #[error("the token lacks the claim {0:?}")]
    MissingClaim(String),
    #[error("the token is malformed: {0}")]
    Malformed(String),
}

/// Checks tokens against one key, issuer and audience.
#[derive(Clone)]
pub struct Verifier {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
    algorithm: Algorithm,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.validation.leeway)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(key: DecodingKey, algorithm: Algorithm, issuer: &str, audience: &str, leeway: Duration) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = leeway.as_secs();
        Self {
            key: Arc::new(key),
            validation: Arc::new(validation),
            algorithm,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
        }
    }

    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str, leeway: Duration) -> Self {
        Self::new(DecodingKey::from_secret(secret), Algorithm::HS256, issuer, audience, leeway)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The verified staff a token names.
    pub fn verify(&self, token: &str) -> Result<Staff, TokenError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.into_kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm {
                    found: algorithm_of(token).unwrap_or_else(|| "an unknown algorithm".into()),
                    expected: format!("{:?}", self.algorithm),
                },
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer { expected: self.issuer.clone() },
                ErrorKind::InvalidAudience => TokenError::WrongAudience { expected: self.audience.clone() },
                ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
                ErrorKind::Json(e) => TokenError::Malformed(format!("claims: {e}")),
                ErrorKind::InvalidClaimFormat(claim) => TokenError::Malformed(format!("claim {claim:?}")),
                _ => TokenError::Malformed("not a JWT".into()),
            })?;
        let claims = data.claims;
        if claims.sub.trim().is_empty() {
            return Err(TokenError::MissingClaim("sub".into()));
        }
        Ok(Staff { id: claims.sub, role: claims.role, department: claims.department })
    }

    /// The token in an `authorization` metadata value (`Bearer <JWT>`).
    pub fn verify_header(&self, authorization: Option<&str>) -> Result<Staff, TokenError> {
        let value = authorization.ok_or(TokenError::Missing)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(TokenError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(TokenError::NotBearer);
        }
        self.verify(token.trim())
    }
}

fn algorithm_of(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok().map(|h| format!("{:?}", h.alg))
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("the signing key is not a valid {algorithm:?} private key (PEM): {message}")]
    Key { algorithm: Algorithm, message: String },
    #[error("signing the token failed: {0}")]
    Sign(String),
}

/// Mints tokens with one key, issuer and audience.
#[derive(Clone)]
pub struct Signer {
    key: EncodingKey,
    algorithm: Algorithm,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
            algorithm: Algorithm::HS256,
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    /// An RSA, EC or Ed25519 private key in PEM.
    pub fn from_pem(algorithm: Algorithm, pem: &[u8], issuer: &str, audience: &str) -> Result<Self, MintError> {
        let key = match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
            _ => EncodingKey::from_rsa_pem(pem),
        }
        .map_err(|e| MintError::Key { algorithm, message: e.to_string() })?;
        Ok(Self { key, algorithm, issuer: issuer.into(), audience: audience.into() })
    }

    /// A token for `staff` valid from now for `ttl`.
    pub fn mint(&self, staff: &Staff, ttl: Duration) -> Result<String, MintError> {
        self.mint_claims(&Claims::new(staff, &self.issuer, &self.audience, ttl))
    }

    /// A token with exactly these claims (tests mint expired or odd tokens with it).
    pub fn mint_claims(&self, claims: &Claims) -> Result<String, MintError> {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.key)
            .map_err(|e| MintError::Sign(e.to_string()))
    }
}

/// An HS256 token for `staff` valid for `ttl`, with the default issuer and audience.
pub fn mint(secret: &[u8], staff: &Staff, ttl: Duration) -> Result<String, MintError> {
    Signer::hs256(secret, crate::DEFAULT_ISSUER, crate::DEFAULT_AUDIENCE).mint(staff, ttl)
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
