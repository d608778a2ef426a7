//! Glue between the container and the crypto module: unlocking an image's cipher and giving
//! the crypto code access to the LUKS region of the file (host access layer).

use crate::crypto::{Passphrase, legacy_aes_cipher};
use crate::header::CryptMethod;
use crate::image::{Crypt, Image, Limits};
use crate::{Error, Result};

/// Builds the data cipher of `img` from `passphrase`.
pub(crate) fn unlock(
    img: &mut Image,
    method: CryptMethod,
    passphrase: &Passphrase,
    limits: &Limits,
) -> Result<Crypt> {
    let _ = limits;
    match method {
        CryptMethod::LegacyAes => Ok(Crypt {
            cipher: legacy_aes_cipher(passphrase),
            physical: false,
        }),
        CryptMethod::Luks => Err(Error::Unsupported {
            what: format!("LUKS images ({}): not wired in yet", img.path().display()),
        }),
        CryptMethod::None => Err(Error::InvalidArgument("image is not encrypted".into())),
    }
}

/// The public facts of the LUKS header of an image (no passphrase needed).
pub(crate) fn luks_info(
    file: &std::fs::File,
    path: &std::path::Path,
    header: &crate::header::Header,
    limits: &Limits,
) -> Result<crate::info::LuksInfo> {
    let _ = (file, header, limits);
    Err(Error::Unsupported {
        what: format!("LUKS header of {}: not wired in yet", path.display()),
    })
}
