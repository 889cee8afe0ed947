//! What validation and evaluation measure: image quality against the truth ([`quality`]:
//! PSNR, SSIM and UQI on luma, high-frequency energy) and the statistics that tell real
//! low-resolution crops from plain down-scales ([`degradation`]). Identity, the face net's
//! descriptor distance, is `nets::facerec::Identity`.

pub mod degradation;
pub mod quality;
