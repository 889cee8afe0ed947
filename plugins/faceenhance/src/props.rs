//! Enum properties shared by the elements, mapped onto the core's choices. Their nicks are
//! the core's `name()`s (tested), which the command line sets them by.

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
    #[enum_value(name = "CenterFace through ONNX Runtime (set-up installs it)", nick = "centerface")]
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

#[cfg(test)]
mod tests {
    use super::*;
    use gst::glib::EnumClass;

    /// Every choice's nick is the core's name for it: the CLI sets properties by those names.
    #[test]
    fn nicks_are_the_core_names() {
        fn check<E: glib::prelude::StaticType + Copy>(
            values: &[E],
            name: impl Fn(E) -> &'static str,
            to_u32: impl Fn(E) -> i32,
        ) {
            let class = EnumClass::with_type(E::static_type()).unwrap();
            for &v in values {
                assert_eq!(class.value(to_u32(v)).unwrap().nick(), name(v));
            }
        }
        use DetectorChoice as D;
        check(&[D::Auto, D::Yunet, D::Centerface, D::Haar], |c| DetectorKind::from(c).name(), |c| c as i32);
        use ProviderChoice as P;
        check(&[P::Auto, P::Cpu, P::Cuda, P::Tensorrt], |c| Provider::from(c).name(), |c| c as i32);
        use BackgroundChoice as B;
        check(&[B::Bicubic, B::Lanczos], |c| Interpolation::from(c).name(), |c| c as i32);
    }
}
