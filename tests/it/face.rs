//! The face detector on real photographs shipped by a package: scikit-image's
//! `skimage/data` (astronaut.png: NASA portrait, public domain; camera.png:
//! CC0; the rest are scenes without faces). `scripts/test` installs
//! scikit-image into `.venv`.

use facehub::image::face::{self, FaceError, FaceRules};
use image::{DynamicImage, RgbImage};

fn skimage(name: &str) -> RgbImage {
    image::load_from_memory(&crate::app::skimage_file(name))
        .unwrap()
        .into_rgb8()
}

#[test]
fn portraits_have_one_face_and_the_crop_holds_it() {
    for name in ["astronaut.png", "camera.png"] {
        let img = skimage(name);
        let faces = face::detect(&img).unwrap();
        let good: Vec<_> = faces.iter().filter(|f| f.score >= 0.75).collect();
        assert_eq!(good.len(), 1, "{name}: {faces:?}");
        let e = face::enrol(&img, &FaceRules::default()).unwrap();
        let f = e.face;
        let (x, y, side) = e.crop_box;
        assert!(f.w >= 48.0 && f.h >= 48.0, "{name}: {f:?}");
        // The crop contains the whole face box.
        assert!(
            x as f32 <= f.x + 1.0 && y as f32 <= f.y + 1.0,
            "{name}: {e:?}"
        );
        assert!((x + side) as f32 >= f.x + f.w - 1.0 && (y + side) as f32 >= f.y + f.h - 1.0);
        let crop = image::load_from_memory(&e.crop_jpeg).unwrap();
        assert_eq!((crop.width(), crop.height()), (side, side));
        // The crop is itself a face photo.
        assert_eq!(
            face::detect(&crop.into_rgb8())
                .unwrap()
                .iter()
                .filter(|f| f.score >= 0.75)
                .count(),
            1
        );
    }
    // The astronaut's face is in the upper middle of the 512² portrait.
    let f = face::enrol(&skimage("astronaut.png"), &FaceRules::default())
        .unwrap()
        .face;
    let (cx, cy) = (f.x + f.w / 2.0, f.y + f.h / 2.0);
    assert!(
        (150.0..300.0).contains(&cx) && (50.0..200.0).contains(&cy),
        "{f:?}"
    );
}

#[test]
fn scenes_without_faces_are_refused() {
    for name in [
        "coffee.png",
        "rocket.jpg",
        "chelsea.png",
        "brick.png",
        "moon.png",
        "horse.png",
    ] {
        let r = face::enrol(&skimage(name), &FaceRules::default());
        assert_eq!(r.unwrap_err(), FaceError::NoFace, "{name}");
    }
}

#[test]
fn small_and_blurred_faces_are_refused() {
    let img = skimage("astronaut.png");
    let small = image::imageops::resize(&img, 160, 160, image::imageops::FilterType::Triangle);
    match face::enrol(&small, &FaceRules::default()) {
        Err(FaceError::TooSmall(..) | FaceError::NoFace) => {}
        other => panic!("{other:?}"),
    }
    let blurred = image::imageops::blur(&img, 6.0);
    match face::enrol(&blurred, &FaceRules::default()) {
        Err(FaceError::Blurred(..) | FaceError::NoFace) => {}
        other => panic!("{other:?}"),
    }
    // The sharp original passes the same rules.
    assert!(
        face::sharpness(
            &img,
            &face::enrol(&img, &FaceRules::default()).unwrap().face
        ) > 30.0
    );
}

#[test]
fn of_several_faces_the_largest_is_enrolled() {
    let big = skimage("astronaut.png");
    let half = image::imageops::resize(&big, 256, 256, image::imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(800, 512, image::Rgb([30, 30, 30]));
    image::imageops::overlay(&mut canvas, &half, 0, 128);
    image::imageops::overlay(&mut canvas, &big, 288, 0);
    let faces = face::detect(&canvas).unwrap();
    assert!(
        faces.iter().filter(|f| f.score >= 0.75).count() >= 2,
        "{faces:?}"
    );
    let e = face::enrol(&canvas, &FaceRules::default()).unwrap();
    assert!(
        e.face.x > 288.0,
        "the larger face, on the right: {:?}",
        e.face
    );
}

/// A JPEG of `img` with an EXIF APP1 segment carrying `orientation`.
fn jpeg_with_orientation(img: &RgbImage, orientation: u16) -> Vec<u8> {
    let mut plain = Vec::new();
    DynamicImage::ImageRgb8(img.clone())
        .write_to(
            &mut std::io::Cursor::new(&mut plain),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    // TIFF header (little endian), one IFD entry: 0x0112 SHORT 1 = value.
    let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

#[test]
fn exif_orientation_is_applied_before_detection() {
    let img = skimage("astronaut.png");
    // Stored sideways, tagged "rotate 90° clockwise to display".
    let sideways = image::imageops::rotate270(&img);
    let bytes = jpeg_with_orientation(&sideways, 6);
    let upright = face::upright(&bytes, image::Limits::default()).unwrap();
    assert_eq!(upright.dimensions(), img.dimensions());
    let e = face::enrol(&upright, &FaceRules::default()).unwrap();
    let f = e.face;
    // Upright again: the face is in the upper half, as in the original.
    assert!(f.y + f.h / 2.0 < 256.0, "{f:?}");
}
