//! Packed 8-bit frames as the stream carries them, without copying.
//!
//! This is the one place that knows where R, G and B sit in each layout: detection,
//! alignment and blending all read and write pixels through [`PixelFormat::rgb_offsets`]
//! or through an OpenCV header over the caller's memory ([`Frame::mat`]).

use anyhow::{bail, ensure, Result};
use opencv::boxed_ref::{BoxedRef, BoxedRefMut};
use opencv::core::{Mat, Rect, Size, ToInputArray, CV_8UC1, CV_8UC3, CV_8UC4};
use opencv::imgproc;
use opencv::prelude::*;

/// Pixel layouts the elements accept (GStreamer names): packed RGB orders, and planar
/// I420 (what decoders give and encoders take: no colour conversion around the element).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgba,
    Bgra,
    Rgbx,
    Bgrx,
    /// Y, then U and V at half width and height, each plane with its own stride.
    I420,
}

impl PixelFormat {
    /// The packed layouts.
    pub const ALL: [PixelFormat; 6] = [Self::Rgb, Self::Bgr, Self::Rgba, Self::Bgra, Self::Rgbx, Self::Bgrx];

    /// Bytes per pixel (of the Y plane for I420).
    pub fn channels(self) -> usize {
        match self {
            Self::Rgb | Self::Bgr => 3,
            Self::I420 => 1,
            _ => 4,
        }
    }

    pub fn is_planar(self) -> bool {
        self == Self::I420
    }

    /// Packed with blue, green and red as its first three bytes (BGR, BGRx, BGRA): what
    /// the models' crops may be without a conversion.
    pub fn is_bgr_first(self) -> bool {
        matches!(self, Self::Bgr | Self::Bgrx | Self::Bgra)
    }

    /// Byte offsets of R, G and B inside one pixel of a packed layout ([0, 0, 0] for
    /// I420, whose pixels are reached through region copies and [`Frame::mix_bgra`]).
    pub fn rgb_offsets(self) -> [usize; 3] {
        match self {
            Self::Rgb | Self::Rgba | Self::Rgbx => [0, 1, 2],
            Self::Bgr | Self::Bgra | Self::Bgrx => [2, 1, 0],
            Self::I420 => [0, 0, 0],
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
            Self::I420 => "I420",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().chain([Self::I420]).find(|f| f.name() == name)
    }

    /// OpenCV colour conversion code from this layout to BGR (None: already BGR).
    fn to_bgr_code(self) -> Option<i32> {
        match self {
            Self::Bgr => None,
            Self::Rgb => Some(imgproc::COLOR_RGB2BGR),
            Self::Rgba | Self::Rgbx => Some(imgproc::COLOR_RGBA2BGR),
            Self::Bgra | Self::Bgrx => Some(imgproc::COLOR_BGRA2BGR),
            Self::I420 => Some(imgproc::COLOR_YUV2BGR_I420),
        }
    }

    /// OpenCV colour conversion code from BGR to this layout (None: already BGR).
    fn bgr_to_code(self) -> Option<i32> {
        match self {
            Self::Bgr => None,
            Self::Rgb => Some(imgproc::COLOR_BGR2RGB),
            Self::Rgba | Self::Rgbx => Some(imgproc::COLOR_BGR2RGBA),
            Self::Bgra | Self::Bgrx => Some(imgproc::COLOR_BGR2BGRA),
            Self::I420 => Some(imgproc::COLOR_BGR2YUV_I420),
        }
    }
}

enum Pixels<'a> {
    ReadOnly(&'a [u8]),
    ReadWrite(&'a mut [u8]),
}

impl Pixels<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Pixels::ReadOnly(d) => d,
            Pixels::ReadWrite(d) => d,
        }
    }

    fn bytes_mut(&mut self) -> Result<&mut [u8]> {
        match self {
            Pixels::ReadOnly(_) => bail!("frame is read-only"),
            Pixels::ReadWrite(d) => Ok(d),
        }
    }
}

/// The U and V planes of an I420 frame, and their row stride.
struct Chroma<'a> {
    u: Pixels<'a>,
    v: Pixels<'a>,
    stride: usize,
}

/// A borrowed frame: packed (rows may be padded, `stride` >= width x channels) or I420
/// (Y in `data`, U and V in their own planes). A frame made with a `_readonly`
/// constructor can be analysed (detection) but not written. I420 frames are read through
/// BGR copies of regions ([`Frame::bgr_region`]) and written through one
/// ([`Frame::write_bgr_region`]) or mixed in their own planes ([`Frame::mix_bgra`]): only
/// where faces are is colour converted.
pub struct Frame<'a> {
    data: Pixels<'a>,
    chroma: Option<Chroma<'a>>,
    width: i32,
    height: i32,
    stride: usize,
    format: PixelFormat,
}

impl<'a> Frame<'a> {
    pub fn new(data: &'a mut [u8], width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<Self> {
        check(data.len(), width, height, stride, format)?;
        Ok(Self {
            data: Pixels::ReadWrite(data),
            chroma: None,
            width: width as i32,
            height: height as i32,
            stride,
            format,
        })
    }

    pub fn new_readonly(data: &'a [u8], width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<Self> {
        check(data.len(), width, height, stride, format)?;
        Ok(Self {
            data: Pixels::ReadOnly(data),
            chroma: None,
            width: width as i32,
            height: height as i32,
            stride,
            format,
        })
    }

    /// An I420 frame over its Y, U and V planes with their strides.
    pub fn new_i420(planes: [&'a mut [u8]; 3], width: u32, height: u32, strides: [usize; 3]) -> Result<Self> {
        let lens = [planes[0].len(), planes[1].len(), planes[2].len()];
        check_i420(lens, width, height, strides)?;
        let [y, u, v] = planes;
        Ok(Self {
            data: Pixels::ReadWrite(y),
            chroma: Some(Chroma { u: Pixels::ReadWrite(u), v: Pixels::ReadWrite(v), stride: strides[1] }),
            width: width as i32,
            height: height as i32,
            stride: strides[0],
            format: PixelFormat::I420,
        })
    }

    pub fn new_i420_readonly(planes: [&'a [u8]; 3], width: u32, height: u32, strides: [usize; 3]) -> Result<Self> {
        let lens = [planes[0].len(), planes[1].len(), planes[2].len()];
        check_i420(lens, width, height, strides)?;
        let [y, u, v] = planes;
        Ok(Self {
            data: Pixels::ReadOnly(y),
            chroma: Some(Chroma { u: Pixels::ReadOnly(u), v: Pixels::ReadOnly(v), stride: strides[1] }),
            width: width as i32,
            height: height as i32,
            stride: strides[0],
            format: PixelFormat::I420,
        })
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
    /// The packed pixels (the Y plane of an I420 frame).
    pub fn data(&self) -> &[u8] {
        self.data.bytes()
    }
    /// The packed pixels, writable; an I420 frame is written with [`Frame::write_bgr_region`].
    pub fn data_mut(&mut self) -> Result<&mut [u8]> {
        ensure!(!self.format.is_planar(), "an I420 frame is written through write_bgr_region");
        self.data.bytes_mut()
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
        ensure!(!self.format.is_planar(), "an I420 frame has no packed view: read it with bgr_region");
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
        ensure!(!self.format.is_planar(), "an I420 frame has no packed view: write it with write_bgr_region");
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
        // The whole frame: the copy's origin is the frame's.
        let (bgr, _, factor) = self.bgr_region_mapped(whole, side as f64 / long as f64)?;
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
        if self.format.is_planar() {
            if !self.has_even_part(rect) {
                return scaled(&self.i420_padded_to_bgr(rect)?, scale);
            }
            // Converted on the even-aligned rectangle around `rect`, then cut to it.
            // (An odd frame's last row and column are outside it.)
            let even = self.even_around(rect)?;
            let bgr = self.i420_to_bgr(even, Size::new(even[2], even[3]))?;
            let (cw, ch) = ((even[0] + even[2]).min(x + w) - x, (even[1] + even[3]).min(y + h) - y);
            let cut = Mat::roi(&bgr, Rect::new(x - even[0], y - even[1], cw, ch))?;
            return scaled(&cut, scale);
        }
        let src = self.mat()?;
        let roi = Mat::roi(&src, Rect::new(x, y, w, h))?;
        if scale == 1.0 {
            return to_bgr(&roi, self.format);
        }
        to_bgr(&scaled(&roi, scale)?, self.format)
    }

    /// A BGR copy of (about) the rectangle `rect`, scaled by (about) `scale`, for analysis:
    /// returns the copy, the frame position of its top-left corner and the factor from its
    /// pixels to the frame's. Packed frames give exactly `rect`; I420 frames the
    /// even-cornered rectangle around it, each plane scaled before the colour conversion
    /// (converting a whole 720p frame to scale it down after cost more than the search).
    pub fn bgr_region_mapped(&self, rect: [i32; 4], scale: f64) -> Result<(Mat, [f32; 2], f32)> {
        if !self.format.is_planar() || !self.has_even_part(rect) {
            let bgr = self.bgr_region(rect, scale)?;
            let factor = rect[2] as f32 / bgr.cols() as f32;
            return Ok((bgr, [rect[0] as f32, rect[1] as f32], factor));
        }
        let even = self.even_around(rect)?;
        let [x, y, w, h] = even;
        // Even output sides, so the chroma planes scale by exactly half.
        let tw = (((w as f64 * scale) / 2.0).round() as i32).max(1) * 2;
        let th = (((h as f64 * scale) / 2.0).round() as i32).max(1) * 2;
        let bgr = self.i420_to_bgr(even, Size::new(tw, th))?;
        Ok((bgr, [x as f32, y as f32], w as f32 / tw as f32))
    }

    /// A grey thumbnail 1/`k` of the frame's size, each pixel the mean of a k x k block:
    /// what motion is judged on (averaging drowns sensor noise and compression flicker).
    pub fn gray_thumbnail(&self, k: i32) -> Result<Mat> {
        let size = Size::new((self.width / k).max(1), (self.height / k).max(1));
        if self.format.is_planar() {
            // The Y plane is the grey picture already.
            let mut small = Mat::default();
            imgproc::resize(&self.plane_view(0)?, &mut small, size, 0.0, 0.0, imgproc::INTER_AREA)?;
            return Ok(small);
        }
        let mut small = Mat::default();
        imgproc::resize(&self.mat()?, &mut small, size, 0.0, 0.0, imgproc::INTER_AREA)?;
        let bgr = to_bgr(&small, self.format)?;
        let mut gray = Mat::default();
        imgproc::cvt_color_def(&bgr, &mut gray, imgproc::COLOR_BGR2GRAY)?;
        Ok(gray)
    }
}

impl Frame<'_> {
    /// A read-only OpenCV view of plane `i` of an I420 frame (0: Y, 1: U, 2: V).
    fn plane_view(&self, i: usize) -> Result<BoxedRef<'_, Mat>> {
        let (bytes, stride, rows, cols) = match (i, &self.chroma) {
            (0, _) => (self.data.bytes(), self.stride, self.height, self.width),
            (1, Some(c)) => (c.u.bytes(), c.stride, (self.height + 1) / 2, (self.width + 1) / 2),
            (2, Some(c)) => (c.v.bytes(), c.stride, (self.height + 1) / 2, (self.width + 1) / 2),
            _ => bail!("plane {i} of a {:?} frame", self.format),
        };
        // SAFETY: the constructors checked that each plane holds `rows` rows of `stride`
        // bytes (the last at least `cols`); the view borrows `self` and is read-only.
        let m = unsafe {
            Mat::new_rows_cols_with_data_unsafe(rows, cols, CV_8UC1, bytes.as_ptr() as *mut std::ffi::c_void, stride)?
        };
        Ok(BoxedRef::from(m))
    }

    /// Whether [`Self::even_around`] has a rectangle for `rect`: not in a frame one pixel
    /// wide or high, nor for a region inside its odd last row or column alone.
    fn has_even_part(&self, rect: [i32; 4]) -> bool {
        let [x, y, w, h] = rect;
        let (we, he) = (self.width & !1, self.height & !1);
        ((x + w + 1) & !1).min(we) > (x & !1) && ((y + h + 1) & !1).min(he) > (y & !1)
    }

    /// BGR of `rect` of an I420 frame that has no even part there (a frame one pixel wide
    /// or high): the planes' pixels copied into an even-sided buffer, the last row and
    /// column repeated, converted, and cut to `rect`. Only ever a row or column of pixels.
    fn i420_padded_to_bgr(&self, rect: [i32; 4]) -> Result<Mat> {
        let [x, y, w, h] = rect;
        let (x0, y0) = (x & !1, y & !1);
        let (pw, ph) = (((x + w + 1) & !1) - x0, ((y + h + 1) & !1) - y0);
        let (cw, ch) = (pw as usize / 2, ph as usize / 2);
        let mut yuv = vec![0u8; pw as usize * ph as usize + 2 * cw * ch];
        let views = [self.plane_view(0)?, self.plane_view(1)?, self.plane_view(2)?];
        let at = |i: usize, px: i32, py: i32| -> Result<u8> {
            let view = &views[i];
            Ok(*view.at_2d::<u8>(py.min(view.rows() - 1), px.min(view.cols() - 1))?)
        };
        for row in 0..ph {
            for col in 0..pw {
                yuv[(row * pw + col) as usize] = at(0, x0 + col, y0 + row)?;
            }
        }
        let luma = pw as usize * ph as usize;
        for row in 0..ch {
            for col in 0..cw {
                let (cx, cy) = (x0 / 2 + col as i32, y0 / 2 + row as i32);
                yuv[luma + row * cw + col] = at(1, cx, cy)?;
                yuv[luma + cw * ch + row * cw + col] = at(2, cx, cy)?;
            }
        }
        let packed = Mat::new_rows_cols_with_data(ph + ph / 2, pw, &yuv)?;
        let mut bgr = Mat::default();
        imgproc::cvt_color_def(&packed, &mut bgr, imgproc::COLOR_YUV2BGR_I420)?;
        Ok(Mat::roi(&bgr, Rect::new(x - x0, y - y0, w, h))?.try_clone()?)
    }

    /// The smallest rectangle with even corners around `rect`, inside the frame's even
    /// part (I420 colour covers 2x2 blocks; an odd last row or column is left alone).
    fn even_around(&self, rect: [i32; 4]) -> Result<[i32; 4]> {
        let (we, he) = (self.width & !1, self.height & !1);
        let [x, y, w, h] = rect;
        let (x0, y0) = (x & !1, y & !1);
        let (x1, y1) = (((x + w + 1) & !1).min(we), ((y + h + 1) & !1).min(he));
        ensure!(
            x1 > x0 && y1 > y0,
            "region {rect:?} has no even part in the {}x{} I420 frame",
            self.width,
            self.height
        );
        Ok([x0, y0, x1 - x0, y1 - y0])
    }

    /// BGR of the even rectangle `r` of an I420 frame at `size` (even sides): each plane
    /// scaled (area-averaged down, linear up; copied at its own size) into one I420 buffer,
    /// then one colour conversion.
    fn i420_to_bgr(&self, r: [i32; 4], size: Size) -> Result<Mat> {
        let [x, y, w, h] = r;
        let (tw, th) = (size.width, size.height);
        let (cw, ch) = (tw as usize / 2, th as usize / 2);
        let mut yuv = vec![0u8; tw as usize * th as usize + 2 * cw * ch];
        {
            let (yp, rest) = yuv.split_at_mut(tw as usize * th as usize);
            let (up, vp) = rest.split_at_mut(cw * ch);
            let enlarging = tw > w;
            let interpolation = if enlarging { imgproc::INTER_LINEAR } else { imgproc::INTER_AREA };
            let planes: [(usize, &mut [u8], Rect, Size); 3] = [
                (0, yp, Rect::new(x, y, w, h), size),
                (1, up, Rect::new(x / 2, y / 2, w / 2, h / 2), Size::new(cw as i32, ch as i32)),
                (2, vp, Rect::new(x / 2, y / 2, w / 2, h / 2), Size::new(cw as i32, ch as i32)),
            ];
            for (i, dst, r, size) in planes {
                let view = self.plane_view(i)?;
                let src = Mat::roi(&view, r)?;
                let mut out = Mat::new_rows_cols_with_data_mut(size.height, size.width, dst)?;
                imgproc::resize(&src, &mut out, size, 0.0, 0.0, interpolation)?;
            }
        }
        let packed = Mat::new_rows_cols_with_data(th + th / 2, tw, &yuv)?;
        let mut bgr = Mat::default();
        imgproc::cvt_color_def(&packed, &mut bgr, imgproc::COLOR_YUV2BGR_I420)?;
        Ok(bgr)
    }

    /// Writes the BGR image `bgr` over the frame's rectangle at (x, y) of its size: through
    /// a colour conversion for I420 (the rectangle must have even corners), a copy for
    /// packed layouts.
    pub fn write_bgr_region(&mut self, x: i32, y: i32, bgr: &Mat) -> Result<()> {
        let (w, h) = (bgr.cols(), bgr.rows());
        ensure!(
            x >= 0 && y >= 0 && x + w <= self.width && y + h <= self.height,
            "a {w}x{h} image at ({x}, {y}) is not inside the {}x{} frame",
            self.width,
            self.height
        );
        if !self.format.is_planar() {
            let format = self.format;
            let mut dst = self.mat_mut()?;
            let mut roi = Mat::roi_mut(&mut dst, Rect::new(x, y, w, h))?;
            return write_bgr(bgr, &mut roi, format);
        }
        ensure!(x % 2 == 0 && y % 2 == 0 && w % 2 == 0 && h % 2 == 0, "I420 regions have even corners");
        let mut yuv = Mat::default();
        imgproc::cvt_color_def(bgr, &mut yuv, imgproc::COLOR_BGR2YUV_I420)?;
        let yuv = yuv.data_bytes()?;
        let (cw, ch) = (w as usize / 2, h as usize / 2);
        let (yp, rest) = yuv.split_at(w as usize * h as usize);
        let (up, vp) = rest.split_at(cw * ch);
        let stride = self.stride;
        let dst = self.data.bytes_mut()?;
        for row in 0..h as usize {
            let at = (y as usize + row) * stride + x as usize;
            dst[at..at + w as usize].copy_from_slice(&yp[row * w as usize..(row + 1) * w as usize]);
        }
        let c = self.chroma.as_mut().expect("I420 frames have chroma");
        let cstride = c.stride;
        for (plane, src) in [(&mut c.u, up), (&mut c.v, vp)] {
            let dst = plane.bytes_mut()?;
            for row in 0..ch {
                let at = (y as usize / 2 + row) * cstride + x as usize / 2;
                dst[at..at + cw].copy_from_slice(&src[row * cw..(row + 1) * cw]);
            }
        }
        Ok(())
    }

    /// Mixes `image` (BGRA u8: a colour and its weight in the alpha byte) over the frame's
    /// rectangle at (x, y) of its size: `v + a (f - v)`, `a` the weight / 255 x `strength`,
    /// in fixed point. Pixels under a zero weight are left bit-exact. I420 frames mix in
    /// their own planes (mixing commutes with the affine colour transform): the image is
    /// converted once, the frame not at all, and chroma takes each 2x2 block's mean weight;
    /// the rectangle must then have even corners ([`Frame::writable_around`]).
    pub fn mix_bgra(&mut self, x: i32, y: i32, image: &Mat, strength: f32) -> Result<()> {
        let (w, h) = (image.cols(), image.rows());
        ensure!(image.typ() == CV_8UC4, "mix_bgra takes BGRA u8, not type {}", image.typ());
        ensure!(
            x >= 0 && y >= 0 && x + w <= self.width && y + h <= self.height,
            "a {w}x{h} image at ({x}, {y}) is not inside the {}x{} frame",
            self.width,
            self.height
        );
        // The weight in 0..=256: one multiply-add and a shift per channel, no branch (a zero
        // weight gives (256 v + 128) >> 8 = v), so the loops vectorise.
        let k = (strength.clamp(0.0, 1.0) * 256.0 / 255.0 * 256.0).round() as u32;
        let weight = |alpha: u8| (alpha as u32 * k + 128) >> 8;
        let mix = |v: &mut u8, f: u8, a: u32| *v = ((*v as u32 * (256 - a) + f as u32 * a + 128) >> 8) as u8;
        let (w, h, x, y) = (w as usize, h as usize, x as usize, y as usize);
        let stride = self.stride;
        if !self.format.is_planar() {
            let [r_off, g_off, b_off] = self.format.rgb_offsets();
            let ch = self.format.channels();
            let bgra = image.data_bytes()?;
            let data = self.data.bytes_mut()?;
            for row in 0..h {
                let start = (y + row) * stride + x * ch;
                let src = &bgra[row * w * 4..(row + 1) * w * 4];
                for (px, f) in data[start..start + w * ch].chunks_exact_mut(ch).zip(src.chunks_exact(4)) {
                    let a = weight(f[3]);
                    mix(&mut px[b_off], f[0], a);
                    mix(&mut px[g_off], f[1], a);
                    mix(&mut px[r_off], f[2], a);
                }
            }
            return Ok(());
        }
        ensure!(x % 2 == 0 && y % 2 == 0 && w % 2 == 0 && h % 2 == 0, "I420 regions have even corners");
        // the weights as a plane of their own: read beside the luma, and averaged for chroma
        let mut alpha = Mat::default();
        opencv::core::extract_channel(image, &mut alpha, 3)?;
        let alpha = alpha.data_bytes()?;
        let mut yuv = Mat::default();
        imgproc::cvt_color_def(image, &mut yuv, imgproc::COLOR_BGRA2YUV_I420)?;
        let yuv = yuv.data_bytes()?;
        let (cw, chh) = (w / 2, h / 2);
        let (yp, rest) = yuv.split_at(w * h);
        let (up, vp) = rest.split_at(cw * chh);
        let luma = self.data.bytes_mut()?;
        for row in 0..h {
            let dst = &mut luma[(y + row) * stride + x..][..w];
            for ((v, &f), &a) in dst.iter_mut().zip(&yp[row * w..(row + 1) * w]).zip(&alpha[row * w..(row + 1) * w]) {
                mix(v, f, weight(a));
            }
        }
        // chroma: each 2x2 block's mean weight
        let mut block = Mat::default();
        let full = Mat::new_rows_cols_with_data(h as i32, w as i32, alpha)?;
        imgproc::resize(&full, &mut block, Size::new(cw as i32, chh as i32), 0.0, 0.0, imgproc::INTER_AREA)?;
        let block = block.data_bytes()?;
        let chroma = self.chroma.as_mut().expect("I420 frames have chroma");
        let cstride = chroma.stride;
        for (plane, src) in [(&mut chroma.u, up), (&mut chroma.v, vp)] {
            let dst = plane.bytes_mut()?;
            for row in 0..chh {
                let line = &mut dst[(y / 2 + row) * cstride + x / 2..][..cw];
                for ((v, &f), &a) in
                    line.iter_mut().zip(&src[row * cw..(row + 1) * cw]).zip(&block[row * cw..(row + 1) * cw])
                {
                    mix(v, f, weight(a));
                }
            }
        }
        Ok(())
    }

    /// The even-cornered rectangle around `rect` for I420 frames, `rect` itself (clipped)
    /// for packed ones: where a region may be read and written back whole.
    pub fn writable_around(&self, rect: [i32; 4]) -> Result<[i32; 4]> {
        if self.format.is_planar() {
            self.even_around(rect)
        } else {
            Ok(rect)
        }
    }
}

/// `m` scaled by `scale` (area-averaged down, linear up), as an owned Mat.
fn scaled(m: &(impl MatTraitConst + ToInputArray), scale: f64) -> Result<Mat> {
    if scale == 1.0 {
        return Ok(m.try_clone()?);
    }
    let size =
        Size::new(((m.cols() as f64 * scale).round() as i32).max(1), ((m.rows() as f64 * scale).round() as i32).max(1));
    let mut out = Mat::default();
    let interpolation = if scale < 1.0 { imgproc::INTER_AREA } else { imgproc::INTER_LINEAR };
    imgproc::resize(m, &mut out, size, 0.0, 0.0, interpolation)?;
    Ok(out)
}

fn check_i420(lens: [usize; 3], width: u32, height: u32, strides: [usize; 3]) -> Result<()> {
    ensure!(width > 0 && height > 0, "empty frame {width}x{height}");
    ensure!(width <= i32::MAX as u32 && height <= i32::MAX as u32, "frame {width}x{height} too large");
    ensure!(strides[1] == strides[2], "U and V strides differ ({} and {})", strides[1], strides[2]);
    let (w, h) = (width as usize, height as usize);
    let sizes = [(w, h), (w.div_ceil(2), h.div_ceil(2)), (w.div_ceil(2), h.div_ceil(2))];
    for (i, ((len, stride), (pw, ph))) in lens.iter().zip(strides).zip(sizes).enumerate() {
        let plane = ["Y", "U", "V"][i];
        ensure!(stride >= pw, "{plane} stride {stride} shorter than a row of {pw} bytes");
        let need = stride * (ph - 1) + pw;
        ensure!(*len >= need, "{plane} plane of {len} bytes holds no {width}x{height} I420 frame ({need} bytes)");
    }
    Ok(())
}

fn check(len: usize, width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<()> {
    ensure!(!format.is_planar(), "{format:?} is planar: make the frame with its planes (Frame::new_i420)");
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

/// Views an owned BGR (or 3-channel) Mat's bytes as a [`Frame`]: blending onto a
/// copy, and tests, benches and the training crate running the core on `imgcodecs` images.
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

    /// A frame one pixel high or wide has no 2x2 colour block: it is read through a
    /// padded copy (was an error: "no even part"), in the colour its planes say.
    #[test]
    fn i420_frames_one_pixel_high_or_wide_are_read() {
        let (yv, uv, vv) = (81u8, 90u8, 240u8);
        let two = [yv; 4].iter().chain(&[uv, vv]).copied().collect::<Vec<_>>();
        let mut want = Mat::default();
        let two = Mat::new_rows_cols_with_data(3, 2, &two).unwrap();
        imgproc::cvt_color_def(&two, &mut want, imgproc::COLOR_YUV2BGR_I420).unwrap();
        let want = *want.at_2d::<opencv::core::Vec3b>(0, 0).unwrap();
        for (w, h) in [(85u32, 1u32), (1, 7), (1, 1), (3, 1)] {
            let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
            let (y, u, v) = (vec![yv; w as usize * h as usize], vec![uv; cw * ch], vec![vv; cw * ch]);
            let frame = Frame::new_i420_readonly([&y, &u, &v], w, h, [w as usize, cw, cw]).unwrap();
            let (bgr, factor) = frame.bgr_scaled(0).unwrap();
            assert_eq!((bgr.cols(), bgr.rows(), factor), (w as i32, h as i32, 1.0), "{w}x{h}");
            assert_eq!(*bgr.at_2d::<opencv::core::Vec3b>(h as i32 - 1, w as i32 - 1).unwrap(), want, "{w}x{h}");
            let (small, origin, f) = frame.bgr_region_mapped([0, 0, w as i32, h as i32], 0.5).unwrap();
            assert_eq!(origin, [0.0, 0.0], "{w}x{h}");
            assert!((small.cols() as f32 * f - w as f32).abs() <= f, "{w}x{h}: {} x {f}", small.cols());
        }
    }
}
