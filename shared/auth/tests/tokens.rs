//! Token verification as a service sees it: HS256 and EdDSA, expiry,
//! not-before, issuer, audience and foreign keys.

use std::time::Duration;

use kesu_auth::{Algorithm, Claims, Role, Signer, Staff, TokenError, Verifier, now_secs};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";
const LEEWAY: Duration = Duration::from_secs(30);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture exists")
}

fn supervisor() -> Staff {
    Staff::new("s-001", Role::Supervisor, "after_sales")
}

fn hs256() -> (Signer, Verifier) {
    (Signer::hs256(SECRET, "kesu", "kesu"), Verifier::hs256(SECRET, "kesu", "kesu", LEEWAY))
}

#[test]
fn hs256_token_names_the_staff() {
    let (signer, verifier) = hs256();
    let token = signer.mint(&supervisor(), Duration::from_secs(3600)).unwrap();
    assert_eq!(verifier.verify(&token).unwrap(), supervisor());
    assert_eq!(verifier.verify_header(Some(&format!("Bearer {token}"))).unwrap(), supervisor());
    assert_eq!(verifier.verify_header(None), Err(TokenError::Missing));
    assert_eq!(verifier.verify_header(Some(&format!("Basic {token}"))), Err(TokenError::NotBearer));
    assert!(matches!(verifier.verify("not.a.jwt"), Err(TokenError::Malformed(_))));
}

#[test]
fn eddsa_token_verifies_with_the_public_key_only() {
    let signer = Signer::from_pem(Algorithm::EdDSA, &fixture("ed25519_private.pem"), "kesu", "kesu").unwrap();
    let public = jsonwebtoken::DecodingKey::from_ed_pem(&fixture("ed25519_public.pem")).unwrap();
    let verifier = Verifier::new(public, Algorithm::EdDSA, "kesu", "kesu", LEEWAY);
    let token = signer.mint(&supervisor(), Duration::from_secs(3600)).unwrap();
    assert_eq!(verifier.verify(&token).unwrap(), supervisor());

    let other = Signer::from_pem(Algorithm::EdDSA, &fixture("other_ed25519_private.pem"), "kesu", "kesu").unwrap();
    let forged = other.mint(&supervisor(), Duration::from_secs(3600)).unwrap();
    assert_eq!(verifier.verify(&forged), Err(TokenError::BadSignature));

    // An HS256 token (e.g. signed with the public key as a secret) is refused.
    let (hs, _) = hs256();
    let hs_token = hs.mint(&supervisor(), Duration::from_secs(3600)).unwrap();
    let err = verifier.verify(&hs_token).unwrap_err();
    assert!(matches!(err, TokenError::WrongAlgorithm { .. }), "{err}");
}

#[test]
fn a_token_signed_with_another_secret_is_refused() {
    let (_, verifier) = hs256();
    let other = Signer::hs256(b"another-secret-of-at-least-32-bytes!", "kesu", "kesu");
    let token = other.mint(&supervisor(), Duration::from_secs(3600)).unwrap();
    let err = verifier.verify(&token).unwrap_err();
    assert_eq!(err, TokenError::BadSignature);
    assert!(!err.to_string().contains(std::str::from_utf8(SECRET).unwrap()));
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let (signer, verifier) = hs256();
    let now = now_secs();
    let mut claims = Claims::new(&supervisor(), "kesu", "kesu", Duration::from_secs(3600));
    claims.exp = now - 3600;
    claims.iat = now - 7200;
    claims.nbf = now - 7200;
    assert_eq!(verifier.verify(&signer.mint_claims(&claims).unwrap()), Err(TokenError::Expired));

    let mut claims = Claims::new(&supervisor(), "kesu", "kesu", Duration::from_secs(7200));
    claims.nbf = now + 3600;
    assert_eq!(verifier.verify(&signer.mint_claims(&claims).unwrap()), Err(TokenError::NotYetValid));

    // Within the leeway both are still fine (clocks drift).
    let mut claims = Claims::new(&supervisor(), "kesu", "kesu", Duration::from_secs(0));
    claims.nbf = now + 5;
    assert!(verifier.verify(&signer.mint_claims(&claims).unwrap()).is_ok());
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let (_, verifier) = hs256();
    let token = Signer::hs256(SECRET, "someone-else", "kesu").mint(&supervisor(), Duration::from_secs(60)).unwrap();
    assert_eq!(verifier.verify(&token), Err(TokenError::WrongIssuer { expected: "kesu".into() }));
    let token = Signer::hs256(SECRET, "kesu", "billing").mint(&supervisor(), Duration::from_secs(60)).unwrap();
    assert_eq!(verifier.verify(&token), Err(TokenError::WrongAudience { expected: "kesu".into() }));
}

#[test]
fn a_token_without_a_known_role_is_refused() {
    #[derive(serde::Serialize)]
    struct Odd<'a> {
        sub: &'a str,
        role: &'a str,
        iss: &'a str,
        aud: &'a str,
        exp: u64,
        nbf: u64,
    }
    let now = now_secs();
    let odd = Odd { sub: "s-1", role: "boss", iss: "kesu", aud: "kesu", exp: now + 60, nbf: now };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &odd,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let (_, verifier) = hs256();
    assert!(matches!(verifier.verify(&token), Err(TokenError::Malformed(_))));
}
