//! Overlapping tiles over an image of any size, stitched without seams.
//!
//! A network sees one `tile × tile` window at a time. Neighbouring windows overlap by at least
//! `overlap` pixels, and every pixel of the image is taken from exactly one window: the one in
//! whose *kept* region it lies. Kept regions meet in the middle of each overlap, so a kept pixel
//! is at least `overlap / 2` pixels from its window's edge (except at the image's own border).
//! A network whose output at a pixel depends only on inputs within `overlap / 2` gives a stitched
//! result identical to running it on the whole image; a U-Net's context is wider, but its
//! border effects fade within a few pixels, which the overlap hides.

/// How an image is cut into overlapping windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// Side of a window in pixels (smaller where the image is smaller).
    pub tile: usize,
    /// Least overlap between neighbouring windows in pixels; less than `tile`.
    pub overlap: usize,
}

/// One window and the part of it that goes into the stitched result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Left column of the window in the image.
    pub x: usize,
    /// Top row of the window in the image.
    pub y: usize,
    /// Window width (≤ `tile`).
    pub width: usize,
    /// Window height (≤ `tile`).
    pub height: usize,
    /// Kept region, image coordinates, half-open: `[x0, x1) × [y0, y1)`.
    pub keep: [usize; 4],
}

/// Window starts along one axis and the kept interval of each.
fn axis(len: usize, tile: usize, overlap: usize) -> Vec<(usize, usize, usize, usize)> {
    let tile = tile.min(len);
    if tile == len {
        return vec![(0, len, 0, len)];
    }
    let stride = tile - overlap.min(tile - 1);
    let mut starts: Vec<usize> = (0..)
        .map(|i| i * stride)
        .take_while(|&s| s + tile < len)
        .collect();
    starts.push(len - tile);
    let n = starts.len();
    (0..n)
        .map(|i| {
            let start = starts[i];
            // Cut each overlap in its middle.
            let lo = if i == 0 {
                0
            } else {
                (start + starts[i - 1] + tile) / 2
            };
            let hi = if i + 1 == n {
                len
            } else {
                (starts[i + 1] + start + tile) / 2
            };
            (start, tile, lo, hi)
        })
        .collect()
}

impl Tiling {
    /// A tiling of `tile`-pixel windows overlapping by `overlap` pixels.
    ///
    /// # Panics
    /// Never; an `overlap ≥ tile` is clamped to `tile - 1`, a `tile` of 0 read as 1.
    pub fn new(tile: usize, overlap: usize) -> Self {
        let tile = tile.max(1);
        Self {
            tile,
            overlap: overlap.min(tile - 1),
        }
    }

    /// The windows covering a `width × height` image, row by row. The kept regions partition the
    /// image.
    ///
    /// # Example
    /// ```
    /// use prunus_data::Tiling;
    /// let tiles = Tiling::new(256, 32).tiles(600, 300);
    /// // Every pixel is kept by exactly one window.
    /// let kept: usize = tiles.iter().map(|t| (t.keep[1] - t.keep[0]) * (t.keep[3] - t.keep[2])).sum();
    /// assert_eq!(kept, 600 * 300);
    /// assert!(tiles.iter().all(|t| t.width <= 256 && t.height <= 256));
    /// ```
    pub fn tiles(&self, width: usize, height: usize) -> Vec<Tile> {
        if width == 0 || height == 0 {
            return Vec::new();
        }
        let xs = axis(width, self.tile, self.overlap);
        let ys = axis(height, self.tile, self.overlap);
        let mut out = Vec::with_capacity(xs.len() * ys.len());
        for &(y, h, y0, y1) in &ys {
            for &(x, w, x0, x1) in &xs {
                out.push(Tile {
                    x,
                    y,
                    width: w,
                    height: h,
                    keep: [x0, x1, y0, y1],
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5×5 box sum: the output at a pixel depends on inputs up to 2 pixels away.
    fn box5(img: &[f32], w: usize, h: usize) -> Vec<f32> {
        let mut out = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                for dy in -2i64..=2 {
                    for dx in -2i64..=2 {
                        let (xx, yy) = (x as i64 + dx, y as i64 + dy);
                        if xx >= 0 && yy >= 0 && (xx as usize) < w && (yy as usize) < h {
                            s += img[yy as usize * w + xx as usize];
                        }
                    }
                }
                out[y * w + x] = s;
            }
        }
        out
    }

    #[test]
    fn kept_regions_partition_the_image() {
        for (w, h, tile, overlap) in [
            (600, 300, 256, 32),
            (2000, 2000, 512, 64),
            (10, 7, 4, 2),
            (5, 5, 64, 8),
            (257, 256, 256, 0),
            (9, 9, 3, 5),
        ] {
            let tiles = Tiling::new(tile, overlap).tiles(w, h);
            let mut seen = vec![0u8; w * h];
            for t in &tiles {
                assert!(t.x + t.width <= w && t.y + t.height <= h);
                let [x0, x1, y0, y1] = t.keep;
                assert!(t.x <= x0 && x1 <= t.x + t.width && t.y <= y0 && y1 <= t.y + t.height);
                for y in y0..y1 {
                    for x in x0..x1 {
                        seen[y * w + x] += 1;
                    }
                }
            }
            assert!(
                seen.iter().all(|&n| n == 1),
                "{w}×{h} tile {tile} overlap {overlap}"
            );
        }
    }

    #[test]
    fn stitched_local_filter_equals_the_whole_image() {
        // Deterministic pseudo-random image, not zeros.
        let (w, h) = (53, 41);
        let img: Vec<f32> = (0..w * h)
            .map(|i| ((i as u64).wrapping_mul(2654435761) % 1000) as f32 / 1000.0)
            .collect();
        let whole = box5(&img, w, h);
        // Overlap 4 keeps every kept pixel ≥ 2 from a window edge: the box filter's reach.
        for t in Tiling::new(16, 4).tiles(w, h) {
            let mut window = vec![0.0; t.width * t.height];
            for y in 0..t.height {
                for x in 0..t.width {
                    window[y * t.width + x] = img[(t.y + y) * w + t.x + x];
                }
            }
            let out = box5(&window, t.width, t.height);
            let [x0, x1, y0, y1] = t.keep;
            for y in y0..y1 {
                for x in x0..x1 {
                    let got = out[(y - t.y) * t.width + (x - t.x)];
                    assert_eq!(got, whole[y * w + x], "pixel ({x}, {y})");
                }
            }
        }
    }
}
