//! Encryption for qcow2 images: LUKS1 and the legacy AES method (work in progress).
