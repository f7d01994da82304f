"""Labelled face / no-face set, OpenCV's detectors on it, and the comparison
with facehub's (run by scripts/bench-detect).

  detect_compare.py dataset DIR FACE_RECOGNITION_SDIST  -> writes DIR/*.png, DIR/labels.tsv
  detect_compare.py compare DIR MODEL RUST_JSONL        -> runs OpenCV, prints the table

Images come from packages: scikit-image's skimage/data (astronaut.png NASA
public domain, camera.png CC0, scenes without faces) and the face_recognition
1.3.0 sdist's tests/test_images (MIT package; White House portraits). Each
face photo is also used mirrored and at half size, so the set has 24 photos
with faces and 28 without.
"""

import json
import os
import sys
import tarfile
import time

import numpy as np
from PIL import Image
import skimage
import cv2

SKIMAGE = os.path.join(os.path.dirname(skimage.__file__), "data")
FACES_SK = ["astronaut.png", "camera.png"]
FACES_FR = ["biden.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg",
            "obama_partial_face.jpg", "obama_partial_face2.jpg"]
NO_FACE_SK = ["brick.png", "cell.png", "chelsea.png", "chessboard_RGB.png", "clock_motion.png",
              "coffee.png", "coins.png", "color.png", "grass.png", "gravel.png", "horse.png",
              "hubble_deep_field.jpg", "ihc.png", "logo.png", "microaneurysms.png", "moon.png",
              "motorcycle_left.png", "motorcycle_right.png", "page.png", "phantom.png",
              "retina.jpg", "rocket.jpg", "text.png"]


def rgb(img):
    return img.convert("RGB")


def dataset(out, sdist):
    os.makedirs(out, exist_ok=True)
    faces = [(n, rgb(Image.open(os.path.join(SKIMAGE, n)))) for n in FACES_SK]
    with tarfile.open(sdist) as t:
        for n in FACES_FR:
            f = t.extractfile(f"face_recognition-1.3.0/tests/test_images/{n}")
            faces.append((n, rgb(Image.open(f))))
    labels = []

    def save(name, img, label):
        path = os.path.join(out, name.rsplit(".", 1)[0] + ".png")
        img.save(path)
        labels.append((os.path.basename(path), label))

    for n, img in faces:
        save(n, img, 1)
        save("mirror-" + n, img.transpose(Image.FLIP_LEFT_RIGHT), 1)
        save("half-" + n, img.resize((img.width // 2, img.height // 2)), 1)
    for n in NO_FACE_SK:
        save(n, rgb(Image.open(os.path.join(SKIMAGE, n))), 0)
    rng = np.random.default_rng(7)
    save("noise.png", Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)), 0)
    save("blank.png", Image.new("RGB", (640, 480), (200, 200, 200)), 0)
    save("mirror-coffee.png", rgb(Image.open(os.path.join(SKIMAGE, "coffee.png"))).transpose(Image.FLIP_LEFT_RIGHT), 0)
    save("mirror-rocket.png", rgb(Image.open(os.path.join(SKIMAGE, "rocket.jpg"))).transpose(Image.FLIP_LEFT_RIGHT), 0)
    save("mirror-chelsea.png", rgb(Image.open(os.path.join(SKIMAGE, "chelsea.png"))).transpose(Image.FLIP_LEFT_RIGHT), 0)
    # Timing inputs: the astronaut at 640x480 and 4000x3000.
    astro = rgb(Image.open(os.path.join(SKIMAGE, "astronaut.png")))
    astro.resize((640, 480)).save(os.path.join(out, "time-640x480.png"))
    astro.resize((4000, 3000)).save(os.path.join(out, "time-4000x3000.png"))
    with open(os.path.join(out, "labels.tsv"), "w") as f:
        for name, label in labels:
            f.write(f"{name}\t{label}\n")
    print(f"{len(labels)} labelled images ({sum(l for _, l in labels)} with faces) in {out}")


def yunet(model):
    return cv2.FaceDetectorYN_create(model, "", (320, 320), 0.75, 0.3, 5000)


def opencv_yunet(det, bgr):
    # The same scaling facehub does: long side 640, then detect.
    h, w = bgr.shape[:2]
    s = 640 / max(w, h)
    small = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_LINEAR)
    det.setInputSize((small.shape[1], small.shape[0]))
    _, faces = det.detect(small)
    return 0 if faces is None else len(faces)


def opencv_haar(cascade, bgr):
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return len(cascade.detectMultiScale(grey, 1.1, 5, minSize=(48, 48)))


def timed(fn, repeat=5):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return out, sorted(times)[len(times) // 2]


def compare(out, model, rust_jsonl):
    cv2.setNumThreads(1)
    labels = dict(line.strip().split("\t") for line in open(os.path.join(out, "labels.tsv")))
    rust = {os.path.basename(r["file"]): r for r in map(json.loads, open(rust_jsonl))}
    det = yunet(model)
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    score = {k: {"tp": 0, "fn": 0, "fp": 0, "tn": 0} for k in ("facehub", "opencv-yunet", "opencv-haar")}
    for name, label in sorted(labels.items()):
        bgr = cv2.imread(os.path.join(out, name))
        found = {
            "facehub": rust[name]["faces"],
            "opencv-yunet": opencv_yunet(det, bgr),
            "opencv-haar": opencv_haar(cascade, bgr),
        }
        for k, n in found.items():
            key = ("tp" if n else "fn") if label == "1" else ("fp" if n else "tn")
            score[k][key] += 1
    print(f"labelled set: {len(labels)} images, {sum(v == '1' for v in labels.values())} with faces")
    print(f"{'detector':14} {'hit':>5} {'miss':>5} {'false+':>7} {'true-':>6}")
    for k, s in score.items():
        print(f"{k:14} {s['tp']:5} {s['fn']:5} {s['fp']:7} {s['tn']:6}")
    print()
    print(f"{'input':12} {'facehub ms':>11} {'yunet ms':>9} {'haar ms':>8} {'facehub/yunet':>14}")
    for t in ("time-640x480.png", "time-4000x3000.png"):
        bgr = cv2.imread(os.path.join(out, t))
        _, y = timed(lambda: opencv_yunet(det, bgr))
        _, h = timed(lambda: opencv_haar(cascade, bgr), 3)
        f = rust[t]["ms"]
        print(f"{t[5:-4]:12} {f:11.1f} {y:9.1f} {h:8.1f} {f / y:13.2f}x")


if __name__ == "__main__":
    if sys.argv[1] == "dataset":
        dataset(sys.argv[2], sys.argv[3])
    else:
        compare(sys.argv[2], sys.argv[3], sys.argv[4])
