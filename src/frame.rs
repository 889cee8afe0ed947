//! Packed 8-bit frames as the stream carries them, without copying.
//!
//! This is the one place that knows where R, G and B sit in each layout: detection,
//! alignment and blending all read and write pixels through [`PixelFormat::rgb_offsets`]
//! or through an OpenCV header over the caller's memory ([`Frame::mat`]).

use anyhow::{bail, ensure, Result};
use opencv::boxed_ref::{BoxedRef, BoxedRefMut};
use opencv::core::{Mat, Rect, Size, ToInputArray, CV_8UC3, CV_8UC4};
use opencv::imgproc;
use opencv::prelude::*;

/// Packed pixel layouts the elements accept (GStreamer names in brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgba,
    Bgra,
    Rgbx,
    Bgrx,
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 6] = [Self::Rgb, Self::Bgr, Self::Rgba, Self::Bgra, Self::Rgbx, Self::Bgrx];

    pub fn channels(self) -> usize {
        match self {
            Self::Rgb | Self::Bgr => 3,
            _ => 4,
        }
    }

    /// Byte offsets of R, G and B inside one pixel.
    pub fn rgb_offsets(self) -> [usize; 3] {
        match self {
            Self::Rgb | Self::Rgba | Self::Rgbx => [0, 1, 2],
            Self::Bgr | Self::Bgra | Self::Bgrx => [2, 1, 0],
        }
    }

    /// The GStreamer video format name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rgb => "RGB",
            Self::Bgr => "BGR",
            Self::Rgba => "RGBA",
            Self::Bgra => "BGRA",
            Self::Rgbx => "RGBx",
            Self::Bgrx => "BGRx",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// OpenCV colour conversion code from this layout to BGR (None: already BGR).
    fn to_bgr_code(self) -> Option<i32> {
        match self {
            Self::Bgr => None,
            Self::Rgb => Some(imgproc::COLOR_RGB2BGR),
            Self::Rgba | Self::Rgbx => Some(imgproc::COLOR_RGBA2BGR),
            Self::Bgra | Self::Bgrx => Some(imgproc::COLOR_BGRA2BGR),
        }
    }

    /// OpenCV colour conversion code from BGR to this layout (None: already BGR).
    fn bgr_to_code(self) -> Option<i32> {
        match self {
            Self::Bgr => None,
            Self::Rgb => Some(imgproc::COLOR_BGR2RGB),
            Self::Rgba | Self::Rgbx => Some(imgproc::COLOR_BGR2RGBA),
            Self::Bgra | Self::Bgrx => Some(imgproc::COLOR_BGR2BGRA),
        }
    }
}

enum Pixels<'a> {
    ReadOnly(&'a [u8]),
    ReadWrite(&'a mut [u8]),
}

/// A borrowed packed frame. Rows may be padded (`stride` >= width x channels). A frame
/// made with [`Frame::new_readonly`] can be analysed (detection) but not written.
pub struct Frame<'a> {
    data: Pixels<'a>,
    width: i32,
    height: i32,
    stride: usize,
    format: PixelFormat,
}

impl<'a> Frame<'a> {
    pub fn new(data: &'a mut [u8], width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<Self> {
        check(data.len(), width, height, stride, format)?;
        Ok(Self { data: Pixels::ReadWrite(data), width: width as i32, height: height as i32, stride, format })
    }

    pub fn new_readonly(data: &'a [u8], width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<Self> {
        check(data.len(), width, height, stride, format)?;
        Ok(Self { data: Pixels::ReadOnly(data), width: width as i32, height: height as i32, stride, format })
    }

    pub fn width(&self) -> i32 {
        self.width
    }
    pub fn height(&self) -> i32 {
        self.height
    }
    pub fn stride(&self) -> usize {
        self.stride
    }
    pub fn format(&self) -> PixelFormat {
        self.format
    }
    pub fn data(&self) -> &[u8] {
        match &self.data {
            Pixels::ReadOnly(d) => d,
            Pixels::ReadWrite(d) => d,
        }
    }
    pub fn data_mut(&mut self) -> Result<&mut [u8]> {
        match &mut self.data {
            Pixels::ReadOnly(_) => bail!("frame is read-only"),
            Pixels::ReadWrite(d) => Ok(d),
        }
    }

    /// An OpenCV header over the frame's memory (no copy), borrowed from the frame: it
    /// cannot outlive it, and OpenCV can only read through it.
    ///
    /// ```
    /// use faceenhance::frame::{Frame, PixelFormat};
    /// use opencv::core::Vec3b;
    /// use opencv::prelude::*;
    /// // 1x2 BGR, rows padded to 4 bytes.
    /// let data = [1u8, 2, 3, 0, 4, 5, 6, 0];
    /// let frame = Frame::new_readonly(&data, 1, 2, 4, PixelFormat::Bgr).unwrap();
    /// let mat = frame.mat().unwrap();
    /// assert_eq!(*mat.at_2d::<Vec3b>(1, 0).unwrap(), Vec3b::from([4, 5, 6]));
    /// ```
    ///
    /// The view cannot outlive the frame's memory:
    ///
    /// ```compile_fail,E0597
    /// use faceenhance::frame::{Frame, PixelFormat};
    /// let mat = {
    ///     let data = [1u8, 2, 3, 0, 4, 5, 6, 0];
    ///     let frame = Frame::new_readonly(&data, 1, 2, 4, PixelFormat::Bgr).unwrap();
    ///     frame.mat().unwrap()
    /// };
    /// ```
    ///
    /// and cannot be written through:
    ///
    /// ```compile_fail,E0599
    /// use faceenhance::frame::{Frame, PixelFormat};
    /// use opencv::core::Vec3b;
    /// use opencv::prelude::*;
    /// let data = [1u8, 2, 3, 0, 4, 5, 6, 0];
    /// let frame = Frame::new_readonly(&data, 1, 2, 4, PixelFormat::Bgr).unwrap();
    /// let mut mat = frame.mat().unwrap();
    /// *mat.at_2d_mut::<Vec3b>(1, 0).unwrap() = Vec3b::from([9, 9, 9]);
    /// ```
    pub fn mat(&self) -> Result<BoxedRef<'_, Mat>> {
        let data = self.data();
        // SAFETY: the header points into `data`, which `check` (in the constructors) showed
        // holds `height` rows of `stride` bytes (the last one at least a row of pixels);
        // the BoxedRef borrows `self`, so the memory outlives the header, and it exposes
        // only OpenCV's read-only traits.
        let m = unsafe {
            Mat::new_rows_cols_with_data_unsafe(
                self.height,
                self.width,
                self.mat_type(),
                data.as_ptr() as *mut std::ffi::c_void,
                self.stride,
            )?
        };
        Ok(BoxedRef::from(m))
    }

    /// A writable OpenCV header over the frame's memory (drawing, pasting), mutably
    /// borrowed from the frame. Fails on read-only frames.
    pub fn mat_mut(&mut self) -> Result<BoxedRefMut<'_, Mat>> {
        let (rows, cols, typ, stride) = (self.height, self.width, self.mat_type(), self.stride);
        let data = self.data_mut()?;
        // SAFETY: as in `mat`, and `data` is the frame's writable memory, borrowed
        // mutably for as long as the header lives.
        let m = unsafe {
            Mat::new_rows_cols_with_data_unsafe(rows, cols, typ, data.as_mut_ptr() as *mut std::ffi::c_void, stride)?
        };
        Ok(BoxedRefMut::from(m))
    }

    fn mat_type(&self) -> i32 {
        if self.format.channels() == 3 {
            CV_8UC3
        } else {
            CV_8UC4
        }
    }

    /// A BGR copy scaled so that its longer side is `side` (0 or the frame's own: no
    /// scaling). Returns the copy and the factor from its coordinates to the frame's.
    pub fn bgr_scaled(&self, side: i32) -> Result<(Mat, f32)> {
        let long = self.width.max(self.height);
        let whole = [0, 0, self.width, self.height];
        if side <= 0 || long == side {
            return Ok((self.bgr_region(whole, 1.0)?, 1.0));
        }
        let bgr = self.bgr_region(whole, side as f64 / long as f64)?;
        let factor = self.width as f32 / bgr.cols() as f32;
        Ok((bgr, factor))
    }

    /// A BGR copy of the rectangle `rect` (x, y, w, h, inside the frame) scaled by `scale`
    /// (area-averaged down, linear up): detection on a region without copying the frame.
    pub fn bgr_region(&self, rect: [i32; 4], scale: f64) -> Result<Mat> {
        let [x, y, w, h] = rect;
        ensure!(
            x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= self.width && y + h <= self.height,
            "region {rect:?} is not inside the {}x{} frame",
            self.width,
            self.height
        );
        let src = self.mat()?;
        let roi = Mat::roi(&src, Rect::new(x, y, w, h))?;
        if scale == 1.0 {
            return to_bgr(&roi, self.format);
        }
        let size = Size::new(((w as f64 * scale).round() as i32).max(1), ((h as f64 * scale).round() as i32).max(1));
        let mut scaled = Mat::default();
        let interpolation = if scale < 1.0 { imgproc::INTER_AREA } else { imgproc::INTER_LINEAR };
        imgproc::resize(&roi, &mut scaled, size, 0.0, 0.0, interpolation)?;
        to_bgr(&scaled, self.format)
    }

    /// A grey thumbnail 1/`k` of the frame's size, each pixel the mean of a k x k block:
    /// what motion is judged on (averaging drowns sensor noise and compression flicker).
    pub fn gray_thumbnail(&self, k: i32) -> Result<Mat> {
        let size = Size::new((self.width / k).max(1), (self.height / k).max(1));
        let mut small = Mat::default();
        imgproc::resize(&self.mat()?, &mut small, size, 0.0, 0.0, imgproc::INTER_AREA)?;
        let bgr = to_bgr(&small, self.format)?;
        let mut gray = Mat::default();
        imgproc::cvt_color_def(&bgr, &mut gray, imgproc::COLOR_BGR2GRAY)?;
        Ok(gray)
    }
}

fn check(len: usize, width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<()> {
    ensure!(width > 0 && height > 0, "empty frame {width}x{height}");
    ensure!(width <= i32::MAX as u32 && height <= i32::MAX as u32, "frame {width}x{height} too large");
    let row = width as usize * format.channels();
    ensure!(stride >= row, "stride {stride} shorter than a row of {row} bytes");
    let need = stride * (height as usize - 1) + row;
    ensure!(len >= need, "buffer of {len} bytes holds no {width}x{height} {format:?} frame ({need} bytes)");
    Ok(())
}

/// Converts a Mat in `format` (owned, or a [`Frame::mat`] view) to an owned BGR Mat.
pub fn to_bgr(m: &(impl MatTraitConst + ToInputArray), format: PixelFormat) -> Result<Mat> {
    match format.to_bgr_code() {
        None => Ok(m.try_clone()?),
        Some(code) => {
            let mut out = Mat::default();
            imgproc::cvt_color_def(m, &mut out, code)?;
            Ok(out)
        }
    }
}

/// Writes a BGR u8 image into `dst`, a Mat in `format` of the same size (typically a
/// region of [`Frame::mat_mut`]); the fourth byte of 4-channel layouts becomes 255.
pub fn write_bgr<D: MatTraitConst + opencv::core::ToOutputArray>(
    bgr: &Mat,
    dst: &mut D,
    format: PixelFormat,
) -> Result<()> {
    ensure!(bgr.size()? == dst.size()?, "BGR image {:?} does not fit the {:?} target", bgr.size()?, dst.size()?);
    match format.bgr_to_code() {
        None => bgr.copy_to(dst)?,
        Some(code) => imgproc::cvt_color_def(bgr, dst, code)?,
    }
    Ok(())
}

/// Views an owned BGR (or 3-channel) Mat's bytes as a [`Frame`]: tests and the CLI use it
/// to run the pipeline on images read with `imgcodecs`.
pub fn frame_from_mat(m: &mut Mat) -> Result<Frame<'_>> {
    let format = match m.channels() {
        3 => PixelFormat::Bgr,
        4 => PixelFormat::Bgra,
        c => bail!("{c}-channel images are not supported"),
    };
    ensure!(m.is_continuous(), "image is not continuous");
    let (w, h) = (m.cols() as u32, m.rows() as u32);
    let stride = m.mat_step().first().copied().unwrap_or(0);
    Frame::new(m.data_bytes_mut()?, w, h, stride, format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Rect, Scalar, Vec4b};

    /// A 3x2 BGRx frame with rows padded to 16 bytes; pixel (x, y) is [x, y, 10 x + y, 0],
    /// padding bytes 99.
    fn padded() -> Vec<u8> {
        let mut data = vec![99u8; 16 * 2];
        for y in 0..2 {
            for x in 0..3 {
                data[y * 16 + x * 4..][..4].copy_from_slice(&[x as u8, y as u8, (10 * x + y) as u8, 0]);
            }
        }
        data
    }

    #[test]
    fn mat_reads_rows_at_the_frames_stride() {
        let data = padded();
        let frame = Frame::new_readonly(&data, 3, 2, 16, PixelFormat::Bgrx).unwrap();
        let m = frame.mat().unwrap();
        assert_eq!((m.cols(), m.rows(), m.mat_step().first().copied()), (3, 2, Some(16)));
        for (x, y) in [(0, 0), (2, 0), (0, 1), (2, 1)] {
            let want = Vec4b::from([x as u8, y as u8, (10 * x + y) as u8, 0]);
            assert_eq!(*m.at_2d::<Vec4b>(y, x).unwrap(), want, "pixel {x},{y}");
        }
    }

    #[test]
    fn mat_mut_writes_the_frame_and_read_only_frames_refuse_it() {
        let mut data = padded();
        let mut frame = Frame::new(&mut data, 3, 2, 16, PixelFormat::Bgrx).unwrap();
        {
            let mut m = frame.mat_mut().unwrap();
            imgproc::rectangle(&mut m, Rect::new(1, 1, 1, 1), Scalar::all(200.0), -1, imgproc::LINE_8, 0).unwrap();
        }
        assert_eq!(&data[16 + 4..][..4], &[200; 4], "pixel 1,1 written in place");
        assert_eq!(&data[12..16], &[99; 4], "padding untouched");
        assert_eq!(&data[16..20], &[0, 1, 1, 0], "pixel 0,1 untouched");

        let copy = padded();
        let mut ro = Frame::new_readonly(&copy, 3, 2, 16, PixelFormat::Bgrx).unwrap();
        assert!(ro.mat_mut().unwrap_err().to_string().contains("read-only"));
    }
}
