//! `kesu token`: mints an HS256 staff token for development from the shared
//! secret in `KESU_AUTH_JWT_SECRET` and prints it.

use std::time::Duration;

use crate::{MIN_SECRET_LEN, Role, Signer, Staff};

/// Arguments of `kesu token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// adapter, agent, handler, supervisor, department_manager, director, admin or analyst.
    #[arg(long)]
    pub role: Role,
    /// Staff id (the token's `sub`).
    #[arg(long)]
    pub staff: String,
    /// Department code, e.g. after_sales (may be empty).
    #[arg(long, default_value = "")]
    pub department: String,
    /// How long the token is valid, e.g. 12h, 30m.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    #[arg(long, env = "KESU_AUTH_ISSUER", default_value = crate::DEFAULT_ISSUER)]
    pub issuer: String,
    #[arg(long, env = "KESU_AUTH_AUDIENCE", default_value = crate::DEFAULT_AUDIENCE)]
    pub audience: String,
}

/// Why no token was printed.
#[derive(Debug, thiserror::Error)]
pub enum TokenCommandError {
    #[error("KESU_AUTH_JWT_SECRET is not set (the services' shared HS256 secret, at least {MIN_SECRET_LEN} bytes)")]
    NoSecret,
    #[error("KESU_AUTH_JWT_SECRET is too short: at least {MIN_SECRET_LEN} bytes")]
    ShortSecret,
    #[error(transparent)]
    Mint(#[from] crate::MintError),
}

impl TokenArgs {
    /// The token these arguments describe, signed with `secret`.
    pub fn mint(&self, secret: &[u8]) -> Result<String, TokenCommandError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(TokenCommandError::ShortSecret);
        }
        let staff = Staff::new(&self.staff, self.role, &self.department);
        Ok(Signer::hs256(secret, &self.issuer, &self.audience).mint(&staff, self.ttl)?)
    }

    /// Reads the secret from `KESU_AUTH_JWT_SECRET` and prints the token.
    pub fn run(&self) -> Result<(), TokenCommandError> {
        let secret = std::env::var("KESU_AUTH_JWT_SECRET").map_err(|_| TokenCommandError::NoSecret)?;
        println!("{}", self.mint(secret.as_bytes())?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::Verifier;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        token: TokenArgs,
    }

    #[test]
    fn mints_a_token_the_services_accept() {
        let cli = Cli::parse_from(["kesu", "--role", "supervisor", "--staff", "s-001", "--department", "after_sales"]);
        assert_eq!(cli.token.ttl, Duration::from_secs(12 * 3600));
        let secret = b"0123456789abcdef0123456789abcdef";
        let token = cli.token.mint(secret).unwrap();
        let staff = Verifier::hs256(secret, "kesu", "kesu", Duration::from_secs(30)).verify(&token).unwrap();
        assert_eq!(staff, Staff::new("s-001", Role::Supervisor, "after_sales"));
        assert!(matches!(cli.token.mint(b"short"), Err(TokenCommandError::ShortSecret)));
        assert!(Cli::try_parse_from(["kesu", "--role", "boss", "--staff", "s-1"]).is_err());
    }
}
