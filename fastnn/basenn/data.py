"""Data loading for the builder: tables (CSV), image folders (Pillow), single images."""

import os

import numpy as np

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
TRANSFORMS = ("Resize", "CenterCrop", "Pad", "Normalize")


def normalize_classes(classes):
    """BaseNN's three spellings (list, {index: name}, {name: index}) as a list of names."""
    if classes is None:
        return None
    if isinstance(classes, dict):
        items = list(classes.items())
        if all(isinstance(k, (int, np.integer)) and isinstance(v, str) for k, v in items):
            pairs = {int(k): v for k, v in items}
        elif all(isinstance(k, str) and isinstance(v, (int, np.integer)) for k, v in items):
            pairs = {int(v): str(k) for k, v in items}
        else:
            raise ValueError("classes: a dict must map index -> name or name -> index "
                             f"(indices are ints, names are strings); got {classes!r}")
        if sorted(pairs) != list(range(len(pairs))):
            raise ValueError(f"classes: indices must be 0..{len(pairs) - 1}, got {sorted(pairs)}")
        return [pairs[i] for i in range(len(pairs))]
    return [str(c) for c in classes]


def load_csv(path, label=True):
    """A CSV with a header row; the last column is the label when ``label``."""
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    if not label:
        return data, None
    x, y = data[:, :-1], data[:, -1]
    if np.all(y == np.round(y)):
        y = y.astype(np.int64)
    return x, y


def _check_transform(transform):
    if transform is None or callable(transform):
        return
    if not isinstance(transform, dict):
        raise TypeError("transform must be a dict like {'Resize': (32, 32)} or a callable "
                        f"taking a PIL image, got {type(transform).__name__}")
    for key in transform:
        if key not in TRANSFORMS:
            raise ValueError(f"transform: unknown step {key!r}; valid: {', '.join(TRANSFORMS)}")


def _hw(v):
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def load_image(path, color="grayscale", transform=None):
    """One image file as a float32 (C, H, W) array in [0, 1] (before Normalize)."""
    from PIL import Image

    if color not in ("grayscale", "RGB"):
        raise ValueError(f"color must be 'grayscale' or 'RGB', got {color!r}")
    _check_transform(transform)
    with Image.open(path) as img:
        img = img.convert("L" if color == "grayscale" else "RGB")
        if callable(transform):
            out = transform(img)
            arr = out.numpy() if hasattr(out, "numpy") else np.asarray(out)
            if arr.ndim == 2:
                arr = arr[None]
            elif arr.ndim == 3 and arr.shape[-1] in (1, 3) and arr.shape[0] not in (1, 3):
                arr = arr.transpose(2, 0, 1)
            arr = arr.astype(np.float32)
            return arr / 255.0 if arr.max(initial=0) > 1.0 else arr
        t = transform or {}
        if "Resize" in t:
            h, w = _hw(t["Resize"])
            img = img.resize((w, h), Image.BILINEAR)
        if "CenterCrop" in t:
            h, w = _hw(t["CenterCrop"])
            left, top = (img.width - w) // 2, (img.height - h) // 2
            img = img.crop((left, top, left + w, top + h))
        arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    if "Pad" in t:
        p = int(t["Pad"])
        arr = np.pad(arr, [(0, 0), (p, p), (p, p)])
    if "Normalize" in t:
        mean, std = (np.asarray(v, np.float32).reshape(-1, 1, 1) for v in t["Normalize"])
        arr = (arr - mean) / std
    return np.ascontiguousarray(arr)


def list_images(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(IMAGE_EXTS))


class ImageFiles:
    """Images read from their files when a batch asks for them (BaseNN's ``batch_mode``): it
    indexes like the (N, C, H, W) array it stands for, indexing gives another ImageFiles, and
    ``np.asarray`` decodes. Only the file names stay in memory."""

    def __init__(self, paths, color, transform, sample_shape=None):
        self.paths, self.color, self.transform = list(paths), color, transform
        if sample_shape is None:
            sample_shape = load_image(self.paths[0], color, transform).shape if self.paths \
                else (0,)
        self.sample_shape = tuple(sample_shape)

    def __len__(self):
        return len(self.paths)

    @property
    def shape(self):
        return (len(self.paths),) + self.sample_shape

    @property
    def ndim(self):
        return 1 + len(self.sample_shape)

    dtype = np.dtype(np.float32)

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)):
            return self._decode([self.paths[idx]])[0]
        picked = np.asarray(self.paths, dtype=object)[idx]
        return ImageFiles(np.atleast_1d(picked).tolist(), self.color, self.transform,
                          self.sample_shape)

    def _decode(self, paths):
        out = np.empty((len(paths),) + self.sample_shape, np.float32)
        for i, p in enumerate(paths):
            img = load_image(p, self.color, self.transform)
            if img.shape != self.sample_shape:
                raise ValueError(f"load_img_data: {p} gives shape {img.shape}, the others "
                                 f"{self.sample_shape}; pass transform={{'Resize': (h, w)}}")
            out[i] = img
        return out

    def __array__(self, dtype=None, copy=None):
        out = self._decode(self.paths)
        return out if dtype is None else out.astype(dtype, copy=False)


def image_folder_files(folder):
    """(paths, labels, class names) of an ImageFolder tree."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"load_img_data: no folder {folder!r}")
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    if not classes:
        raise ValueError(f"load_img_data: {folder!r} has no class sub-folders "
                         "(expected folder/<class>/<image files>)")
    paths, ys = [], []
    for i, c in enumerate(classes):
        files = list_images(os.path.join(folder, c))
        paths += files
        ys += [i] * len(files)
    if not paths:
        raise ValueError(f"load_img_data: no images ({', '.join(IMAGE_EXTS)}) under {folder!r}")
    return paths, np.asarray(ys, np.int64), classes


def load_image_folder(folder, color="grayscale", transform=None):
    """The ImageFolder layout: one sub-folder per class, sorted names = class indices."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"load_img_data: no folder {folder!r}")
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    if not classes:
        raise ValueError(f"load_img_data: {folder!r} has no class sub-folders "
                         "(expected folder/<class>/<image files>)")
    xs, ys = [], []
    for i, c in enumerate(classes):
        for path in list_images(os.path.join(folder, c)):
            xs.append(load_image(path, color, transform))
            ys.append(i)
    if not xs:
        raise ValueError(f"load_img_data: no images ({', '.join(IMAGE_EXTS)}) under {folder!r}")
    shapes = {a.shape for a in xs}
    if len(shapes) > 1:
        raise ValueError(f"load_img_data: images have different sizes {sorted(shapes)}; "
                         "pass transform={'Resize': (h, w)}")
    return np.stack(xs), np.asarray(ys, np.int64), classes
