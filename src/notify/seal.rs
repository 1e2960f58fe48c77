//! Target URLs are sealed in the database, not stored in clear.
//!
//! Why sealed rather than named in the settings: a webhook URL is a secret
//! (whoever has a Slack incoming-webhook URL can post to the channel), and
//! backups and database dumps travel further than the server's settings.
//! Sealed with a key only the settings hold (`VETTER_NOTIFY_KEY`), a URL is
//! useless to whoever has the dump alone, while an administrator can still
//! add a channel from the admin page without the operator editing settings
//! and restarting (the operator keeps control through the host allow-list).
//!
//! ChaCha20-Poly1305 from `ring` (already built for TLS), a fresh random
//! nonce per URL, and the project's id as associated data, so a sealed URL
//! copied into another project's row does not open. The key is derived
//! from the setting with HKDF, so the setting can be any long random text.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::Secret;
use crate::domain::ProjectId;

/// The first byte of every sealed URL: the scheme, so that it can change.
const VERSION: u8 = 1;

pub struct Sealer {
    key: LessSafeKey,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the sealed URL cannot be opened: VETTER_NOTIFY_KEY has changed, or the row was altered; enter the URL again")]
    Unopenable,
    #[error("the random source failed")]
    Random,
}

impl Sealer {
    pub fn new(setting: &Secret) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vetter notify");
        let prk = salt.extract(setting.expose().as_bytes());
        let okm = prk
            .expand(&[b"target url v1"], &CHACHA20_POLY1305)
            .expect("32 bytes is a valid HKDF-SHA256 output");
        Self {
            key: LessSafeKey::new(UnboundKey::from(okm)),
        }
    }

    pub fn seal(&self, project: ProjectId, url: &str) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut data = url.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad(project), &mut data)
            .map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + data.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        Ok(out)
    }

    pub fn open(&self, project: ProjectId, sealed: &[u8]) -> Result<String, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError::Unopenable)?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return Err(SealError::Unopenable);
        }
        let (nonce, data) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Unopenable)?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, aad(project), &mut data)
            .map_err(|_| SealError::Unopenable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Unopenable)
    }
}

fn aad(project: ProjectId) -> Aad<[u8; 8]> {
    Aad::from(project.0.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_url_opens_only_with_its_key_and_project() {
        let s = Sealer::new(&Secret::new("k".repeat(40)));
        let url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
        let sealed = s.seal(ProjectId(7), url).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("XXXXSECRET"));
        assert_ne!(
            sealed,
            s.seal(ProjectId(7), url).unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(s.open(ProjectId(7), &sealed).unwrap(), url);
        assert_eq!(s.open(ProjectId(8), &sealed), Err(SealError::Unopenable));
        let other = Sealer::new(&Secret::new("j".repeat(40)));
        assert_eq!(
            other.open(ProjectId(7), &sealed),
            Err(SealError::Unopenable)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(s.open(ProjectId(7), &tampered), Err(SealError::Unopenable));
        assert_eq!(s.open(ProjectId(7), &[]), Err(SealError::Unopenable));
    }
}
