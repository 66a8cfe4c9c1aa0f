//! The token settings of a service, from the environment (`AUTH_*` keys,
//! read as `KESU_<SERVICE>_<KEY>` then `KESU_<KEY>`). Secure by default: a
//! service with no key configured does not start.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey};
use kesu_config::{ConfigError, Env};

use crate::Verifier;

/// Shortest HS256 secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// How tokens are checked: the verifier built from `AUTH_JWT_SECRET` or
/// `AUTH_JWT_PUBLIC_KEY_FILE`, `AUTH_JWT_ALGORITHM`, `AUTH_ISSUER`,
/// `AUTH_AUDIENCE` and `AUTH_LEEWAY`.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub verifier: Verifier,
}

impl AuthConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let issuer = env.string("AUTH_ISSUER", crate::DEFAULT_ISSUER)?;
        let audience = env.string("AUTH_AUDIENCE", crate::DEFAULT_AUDIENCE)?;
        let leeway = env.duration("AUTH_LEEWAY", Duration::from_secs(30))?;
        let secret = env.secret("AUTH_JWT_SECRET")?;
        let public_key: Option<PathBuf> = env.optional("AUTH_JWT_PUBLIC_KEY_FILE")?;
        let algorithm: Option<String> = env.optional("AUTH_JWT_ALGORITHM")?;
        let key_name = |key: &str| env.name_of(key);
        let algorithm = match algorithm {
            None => None,
            Some(name) => Some(parse_algorithm(&name).ok_or_else(|| ConfigError {
                key: key_name("AUTH_JWT_ALGORITHM"),
                message: format!(
                    "unknown algorithm {name:?} (HS256 with AUTH_JWT_SECRET; RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA with AUTH_JWT_PUBLIC_KEY_FILE)"
                ),
            })?),
        };
        let verifier = match (secret, public_key) {
            (Some(_), Some(_)) => {
                return Err(ConfigError {
                    key: key_name("AUTH_JWT_SECRET"),
                    message: format!(
                        "set either it or {} (a public key), not both",
                        key_name("AUTH_JWT_PUBLIC_KEY_FILE")
                    ),
                });
            }
            (None, None) => {
                return Err(ConfigError {
                    key: format!("{}AUTH_JWT_SECRET", env.service_prefix()),
                    message: format!(
                        "every gRPC API requires staff tokens: set AUTH_JWT_SECRET (HS256, at least {MIN_SECRET_LEN} bytes) \
                         or AUTH_JWT_PUBLIC_KEY_FILE (PEM, with AUTH_JWT_ALGORITHM), as KESU_<SERVICE>_<KEY> or KESU_<KEY>"
                    ),
                });
            }
            (Some(secret), None) => {
                if let Some(alg) = algorithm.filter(|a| *a != Algorithm::HS256) {
                    return Err(ConfigError {
                        key: key_name("AUTH_JWT_ALGORITHM"),
                        message: format!("{alg:?} needs AUTH_JWT_PUBLIC_KEY_FILE; a shared secret is HS256"),
                    });
                }
                if secret.expose().len() < MIN_SECRET_LEN {
                    return Err(ConfigError {
                        key: key_name("AUTH_JWT_SECRET"),
                        message: format!(
                            "is too short: at least {MIN_SECRET_LEN} bytes (e.g. `openssl rand -base64 32`)"
                        ),
                    });
                }
                Verifier::hs256(secret.expose().as_bytes(), &issuer, &audience, leeway)
            }
            (None, Some(path)) => {
                let key = key_name("AUTH_JWT_PUBLIC_KEY_FILE");
                let algorithm = algorithm.unwrap_or(Algorithm::RS256);
                if algorithm == Algorithm::HS256 {
                    return Err(ConfigError {
                        key: key_name("AUTH_JWT_ALGORITHM"),
                        message: "HS256 needs AUTH_JWT_SECRET, not a public key".into(),
                    });
                }
                let pem = std::fs::read(&path).map_err(|e| ConfigError {
                    key: key.clone(),
                    message: format!("cannot read {}: {e}", path.display()),
                })?;
                let decoding = match algorithm {
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                    _ => DecodingKey::from_rsa_pem(&pem),
                }
                .map_err(|e| ConfigError {
                    key,
                    message: format!(
                        "{} is not a {algorithm:?} public key in PEM ({e}); AUTH_JWT_ALGORITHM chooses the algorithm",
                        path.display()
                    ),
                })?;
                Verifier::new(decoding, algorithm, &issuer, &audience, leeway)
            }
        };
        Ok(Self { verifier })
    }
}

fn parse_algorithm(name: &str) -> Option<Algorithm> {
    use Algorithm::*;
    [HS256, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA]
        .into_iter()
        .find(|a| format!("{a:?}").eq_ignore_ascii_case(name.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_vars("routing", pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn no_key_refuses_to_start_naming_the_keys() {
        let err = AuthConfig::from_env(&env(&[])).unwrap_err();
        assert_eq!(err.key, "KESU_ROUTING_AUTH_JWT_SECRET");
        assert!(err.message.contains("AUTH_JWT_PUBLIC_KEY_FILE"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key_and_hide_the_secret() {
        let err = AuthConfig::from_env(&env(&[("KESU_AUTH_JWT_SECRET", "short-secret")])).unwrap_err();
        assert_eq!(err.key, "KESU_AUTH_JWT_SECRET");
        assert!(!err.to_string().contains("short-secret"), "{err}");
        let long = "0123456789abcdef0123456789abcdef";
        let err = AuthConfig::from_env(&env(&[("KESU_AUTH_JWT_SECRET", long), ("KESU_AUTH_JWT_ALGORITHM", "RS257")]))
            .unwrap_err();
        assert_eq!(err.key, "KESU_AUTH_JWT_ALGORITHM");
        let err = AuthConfig::from_env(&env(&[("KESU_AUTH_JWT_SECRET", long), ("KESU_ROUTING_AUTH_LEEWAY", "soon")]))
            .unwrap_err();
        assert_eq!(err.key, "KESU_ROUTING_AUTH_LEEWAY");
        let err = AuthConfig::from_env(&env(&[("KESU_AUTH_JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem")])).unwrap_err();
        assert_eq!(err.key, "KESU_AUTH_JWT_PUBLIC_KEY_FILE");
        let err = AuthConfig::from_env(&env(&[
            ("KESU_AUTH_JWT_SECRET", long),
            ("KESU_AUTH_JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem"),
        ]))
        .unwrap_err();
        assert_eq!(err.key, "KESU_AUTH_JWT_SECRET");
        let ok = AuthConfig::from_env(&env(&[("KESU_AUTH_JWT_SECRET", long)])).unwrap();
        assert!(!format!("{ok:?}").contains(long));
    }

    #[test]
    fn a_public_key_file_with_the_wrong_algorithm_names_the_file_key() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ed25519_public.pem");
        let err = AuthConfig::from_env(&env(&[("KESU_AUTH_JWT_PUBLIC_KEY_FILE", path)])).unwrap_err();
        assert_eq!(err.key, "KESU_AUTH_JWT_PUBLIC_KEY_FILE");
        assert!(err.message.contains("AUTH_JWT_ALGORITHM"), "{err}");
        let ok = AuthConfig::from_env(&env(&[
            ("KESU_AUTH_JWT_PUBLIC_KEY_FILE", path),
            ("KESU_AUTH_JWT_ALGORITHM", "EdDSA"),
        ]))
        .unwrap();
        assert_eq!(ok.verifier.algorithm(), Algorithm::EdDSA);
    }
}
