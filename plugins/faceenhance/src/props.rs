//! Enum properties shared by the elements, mapped onto the core's choices.

use faceenhance::detect::DetectorKind;
use faceenhance::model::Provider;
use faceenhance::upscale::Interpolation;
use gst::glib;

#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstFaceDetectorKind")]
pub enum DetectorChoice {
    #[default]
    #[enum_value(name = "YuNet if a model is set, else CenterFace if installed, else Haar", nick = "auto")]
    Auto,
    #[enum_value(name = "YuNet (OpenCV FaceDetectorYN; needs model)", nick = "yunet")]
    Yunet,
    #[enum_value(name = "CenterFace through OpenCV DNN (set-up installs it)", nick = "centerface")]
    Centerface,
    #[enum_value(name = "Haar face + eye cascades (opencv-data)", nick = "haar")]
    Haar,
}

impl From<DetectorChoice> for DetectorKind {
    fn from(c: DetectorChoice) -> Self {
        match c {
            DetectorChoice::Auto => DetectorKind::Auto,
            DetectorChoice::Yunet => DetectorKind::YuNet,
            DetectorChoice::Centerface => DetectorKind::CenterFace,
            DetectorChoice::Haar => DetectorKind::Haar,
        }
    }
}

#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstFaceRestoreProvider")]
pub enum ProviderChoice {
    #[default]
    #[enum_value(name = "TensorRT, else CUDA, else CPU", nick = "auto")]
    Auto,
    #[enum_value(name = "CPU", nick = "cpu")]
    Cpu,
    #[enum_value(name = "CUDA (falls back to CPU)", nick = "cuda")]
    Cuda,
    #[enum_value(name = "TensorRT (falls back to CUDA, then CPU)", nick = "tensorrt")]
    Tensorrt,
}

impl From<ProviderChoice> for Provider {
    fn from(c: ProviderChoice) -> Self {
        match c {
            ProviderChoice::Auto => Provider::Auto,
            ProviderChoice::Cpu => Provider::Cpu,
            ProviderChoice::Cuda => Provider::Cuda,
            ProviderChoice::Tensorrt => Provider::TensorRt,
        }
    }
}

#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstFaceRestoreBackground")]
pub enum BackgroundChoice {
    #[default]
    #[enum_value(name = "Bicubic (OpenCV)", nick = "bicubic")]
    Bicubic,
    #[enum_value(name = "Lanczos, 8x8 taps (OpenCV)", nick = "lanczos")]
    Lanczos,
}

impl From<BackgroundChoice> for Interpolation {
    fn from(c: BackgroundChoice) -> Self {
        match c {
            BackgroundChoice::Bicubic => Interpolation::Bicubic,
            BackgroundChoice::Lanczos => Interpolation::Lanczos,
        }
    }
}
