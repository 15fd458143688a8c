//! Synthetic aerial scenes: RGB tiles with buildings, roads, vegetation and bare ground, and the
//! building footprint mask — deterministic from a seed, fast, and made to be learnable but not
//! trivial.
//!
//! No colour gives buildings away: roofs are drawn from the same grey, dark, reddish and beige
//! ranges as roads, paved and bare ground; what tells them apart is shape (rectangles and
//! L-shapes, rotated), texture (pitched roofs have a bright and a dark side, flat roofs carry
//! rooftop units) and the shadow each building casts away from the scene's sun.

use burn::config::Config;

use crate::rng::Rng;

/// Configuration of the synthetic scene generator.
#[derive(Config, Debug, PartialEq)]
pub struct SyntheticConfig {
    /// Side of a square tile in pixels.
    #[config(default = 128)]
    pub size: usize,
    /// The seed of the stream: scene `i` of a seed is always the same.
    #[config(default = 0)]
    pub seed: u64,
    /// Fewest buildings per 128×128 pixels (scaled with the tile's area).
    #[config(default = 2)]
    pub min_buildings: usize,
    /// Most buildings per 128×128 pixels (scaled with the tile's area).
    #[config(default = 9)]
    pub max_buildings: usize,
    /// Standard deviation of the per-pixel sensor noise, in `[0, 1]` intensity units.
    #[config(default = 0.03)]
    pub noise: f32,
}

/// One synthetic tile.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Side of the tile in pixels.
    pub size: usize,
    /// RGB in `[0, 1]`, channels first: `[3, size, size]` flattened.
    pub image: Vec<f32>,
    /// Building footprint, `[size, size]` flattened: 1 building, 0 not.
    pub mask: Vec<u8>,
}

impl Scene {
    /// Share of building pixels.
    pub fn building_fraction(&self) -> f32 {
        self.mask.iter().map(|&m| m as f32).sum::<f32>() / self.mask.len() as f32
    }
}

type Rgb = [f32; 3];

/// A shape in its own frame: rectangles `(centre_u, centre_v, half_width, half_height)`.
struct Shape {
    centre: [f32; 2],
    cos: f32,
    sin: f32,
    parts: Vec<[f32; 4]>,
}

impl Shape {
    /// The part containing pixel centre `(x, y)` and the point's coordinates in its frame.
    fn locate(&self, x: f32, y: f32, grow: f32) -> Option<(usize, f32, f32)> {
        let (dx, dy) = (x - self.centre[0], y - self.centre[1]);
        let u = dx * self.cos + dy * self.sin;
        let v = -dx * self.sin + dy * self.cos;
        self.parts
            .iter()
            .enumerate()
            .find_map(|(i, [cu, cv, hw, hh])| {
                let (pu, pv) = (u - cu, v - cv);
                (pu.abs() <= hw + grow && pv.abs() <= hh + grow).then_some((i, pu, pv))
            })
    }

    /// Pixel bounding box `[x0, y0, x1, y1)` clipped to the tile, grown by `margin`.
    fn bounds(&self, size: usize, margin: f32) -> [usize; 4] {
        let mut r = 0.0f32;
        for [cu, cv, hw, hh] in &self.parts {
            r = r.max((cu.abs() + hw).hypot(cv.abs() + hh));
        }
        let r = r + margin + 1.0;
        let clip = |v: f32| v.clamp(0.0, size as f32) as usize;
        [
            clip(self.centre[0] - r),
            clip(self.centre[1] - r),
            clip(self.centre[0] + r + 1.0),
            clip(self.centre[1] + r + 1.0),
        ]
    }
}

struct Canvas {
    size: usize,
    rgb: Vec<Rgb>,
    mask: Vec<u8>,
}

impl Canvas {
    fn paint(&mut self, x: usize, y: usize, colour: Rgb) {
        self.rgb[y * self.size + x] = colour;
    }

    fn shade(&mut self, x: usize, y: usize, factor: f32) {
        for c in &mut self.rgb[y * self.size + x] {
            *c *= factor;
        }
    }
}

/// Smooth value noise in `[0, 1]`: a random `cells × cells` grid interpolated bilinearly.
fn value_noise(rng: &mut Rng, size: usize, cells: usize) -> Vec<f32> {
    let n = cells + 1;
    let grid: Vec<f32> = (0..n * n).map(|_| rng.unit()).collect();
    let scale = cells as f32 / size as f32;
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        let gy = y as f32 * scale;
        let (y0, ty) = (gy as usize, gy.fract());
        for x in 0..size {
            let gx = x as f32 * scale;
            let (x0, tx) = (gx as usize, gx.fract());
            let at = |i: usize, j: usize| grid[j * n + i];
            let top = at(x0, y0) * (1.0 - tx) + at(x0 + 1, y0) * tx;
            let bottom = at(x0, y0 + 1) * (1.0 - tx) + at(x0 + 1, y0 + 1) * tx;
            out.push(top * (1.0 - ty) + bottom * ty);
        }
    }
    out
}

fn jitter(rng: &mut Rng, colour: Rgb, amount: f32) -> Rgb {
    let bright = 1.0 + rng.range(-amount, amount);
    colour.map(|c| c * bright * (1.0 + rng.range(-amount, amount) * 0.5))
}

/// Colours shared by roofs and by the ground, so that colour alone cannot find a building.
fn surface_colour(rng: &mut Rng) -> Rgb {
    match rng.below(5) {
        0 => {
            let g = rng.range(0.32, 0.68);
            [g, g, g * 1.02]
        }
        1 => [0.56, 0.33, 0.27],
        2 => {
            let g = rng.range(0.18, 0.3);
            [g, g, g]
        }
        3 => [0.7, 0.64, 0.54],
        _ => [0.48, 0.41, 0.33],
    }
}

fn jittered_surface(rng: &mut Rng, amount: f32) -> Rgb {
    let colour = surface_colour(rng);
    jitter(rng, colour, amount)
}

fn ground(rng: &mut Rng, canvas: &mut Canvas) {
    let size = canvas.size;
    let soil = jittered_surface(rng, 0.08);
    let grass = jitter(rng, [0.3, 0.42, 0.22], 0.1);
    let mix = value_noise(rng, size, 4);
    let bright = value_noise(rng, size, 9);
    let grass_share = rng.range(0.25, 0.75);
    for y in 0..size {
        for x in 0..size {
            let i = y * size + x;
            let t = ((mix[i] - grass_share) * 6.0).clamp(0.0, 1.0);
            let b = 0.85 + 0.3 * bright[i];
            let c = [0, 1, 2].map(|k| (soil[k] * t + grass[k] * (1.0 - t)) * b);
            canvas.paint(x, y, c);
        }
    }
}

fn roads(rng: &mut Rng, canvas: &mut Canvas) -> Vec<f32> {
    let size = canvas.size as f32;
    let count = rng.below(3);
    let mut angles = Vec::new();
    for _ in 0..count {
        let angle = if rng.chance(0.7) {
            rng.below(2) as f32 * std::f32::consts::FRAC_PI_2 + rng.range(-0.05, 0.05)
        } else {
            rng.range(0.0, std::f32::consts::PI)
        };
        angles.push(angle);
        let (cx, cy) = (rng.range(0.1, 0.9) * size, rng.range(0.1, 0.9) * size);
        let half = rng.range(3.0, 7.0) * size / 128.0;
        let asphalt = jittered_surface(rng, 0.05);
        let marking = rng.chance(0.5);
        let (nx, ny) = (-angle.sin(), angle.cos());
        for y in 0..canvas.size {
            for x in 0..canvas.size {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                let across = dx * nx + dy * ny;
                if across.abs() <= half {
                    let along = dx * ny - dy * nx;
                    let dash = marking && across.abs() < 0.6 && (along / 6.0).rem_euclid(2.0) < 1.0;
                    let c = if dash { [0.85, 0.85, 0.8] } else { asphalt };
                    canvas.paint(x, y, c);
                }
            }
        }
    }
    angles
}

fn vegetation(rng: &mut Rng, canvas: &mut Canvas) {
    let size = canvas.size as f32;
    for _ in 0..rng.below(4) {
        let (cx, cy) = (rng.range(0.0, size), rng.range(0.0, size));
        let (rx, ry) = (
            rng.range(6.0, 20.0) * size / 128.0,
            rng.range(6.0, 20.0) * size / 128.0,
        );
        let green = jitter(rng, [0.22, 0.36, 0.16], 0.15);
        let [x0, y0, x1, y1] =
            [cx - rx, cy - ry, cx + rx + 1.0, cy + ry + 1.0].map(|v| v.clamp(0.0, size) as usize);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = ((x as f32 + 0.5 - cx) / rx, (y as f32 + 0.5 - cy) / ry);
                if dx * dx + dy * dy <= 1.0 {
                    let t = 0.8 + 0.4 * rng.unit();
                    canvas.paint(x, y, green.map(|c| c * t));
                }
            }
        }
    }
}

/// Roof appearance: a pitched roof's two sides differ in brightness; a flat roof carries a few
/// darker rooftop units.
struct Roof {
    colour: Rgb,
    pitched: bool,
    units: Vec<[f32; 4]>,
}

fn building_shape(rng: &mut Rng, size: f32, angles: &[f32]) -> Shape {
    let scale = size / 128.0;
    let (w, h) = (rng.range(7.0, 30.0) * scale, rng.range(7.0, 20.0) * scale);
    let mut parts = vec![[0.0, 0.0, w / 2.0, h / 2.0]];
    if rng.chance(0.3) {
        // An L: a wing under one end of the main block.
        let (ww, wh) = (rng.range(0.35, 0.6) * w, rng.range(0.6, 1.4) * h);
        let side = if rng.chance(0.5) { -1.0 } else { 1.0 };
        parts.push([
            side * (w - ww) / 2.0,
            (h + wh) / 2.0 - 0.5,
            ww / 2.0,
            wh / 2.0,
        ]);
    }
    let angle = match angles.first() {
        Some(&a) if rng.chance(0.6) => a + rng.below(2) as f32 * std::f32::consts::FRAC_PI_2,
        _ => rng.range(0.0, std::f32::consts::PI),
    };
    Shape {
        centre: [rng.range(0.0, size), rng.range(0.0, size)],
        cos: angle.cos(),
        sin: angle.sin(),
        parts,
    }
}

fn buildings(rng: &mut Rng, canvas: &mut Canvas, config: &SyntheticConfig, angles: &[f32]) {
    let size = canvas.size as f32;
    let area = (size * size) / (128.0 * 128.0);
    let low = (config.min_buildings as f32 * area).round() as usize;
    let high = ((config.max_buildings as f32 * area).round() as usize).max(low);
    let count = low + rng.below(high - low + 1);
    let sun = rng.range(0.0, std::f32::consts::TAU);
    let shadow_len = rng.range(2.0, 5.0) * size / 128.0;
    let (sx, sy) = (sun.cos() * shadow_len, sun.sin() * shadow_len);
    for _ in 0..count {
        // A few tries to find a free spot; buildings never overlap.
        let Some(shape) = (0..8).map(|_| building_shape(rng, size, angles)).find(|s| {
            let [x0, y0, x1, y1] = s.bounds(canvas.size, 2.0);
            (y0..y1).all(|y| {
                (x0..x1).all(|x| {
                    canvas.mask[y * canvas.size + x] == 0
                        || s.locate(x as f32 + 0.5, y as f32 + 0.5, 2.0).is_none()
                })
            })
        }) else {
            continue;
        };
        let mut colour = jittered_surface(rng, 0.06);
        if rng.chance(0.1) {
            colour = jitter(rng, [0.33, 0.42, 0.33], 0.06);
        }
        let pitched = rng.chance(0.5);
        let units = if pitched {
            Vec::new()
        } else {
            let [_, _, hw, hh] = shape.parts[0];
            (0..rng.below(4))
                .map(|_| {
                    let (uw, uh) = (rng.range(1.0, 3.0), rng.range(1.0, 3.0));
                    [
                        rng.range(-hw + uw, hw - uw),
                        rng.range(-hh + uh, hh - uh),
                        uw,
                        uh,
                    ]
                })
                .collect()
        };
        let roof = Roof {
            colour,
            pitched,
            units,
        };
        draw_building(canvas, &shape, &roof, [sx, sy]);
    }
}

fn draw_building(canvas: &mut Canvas, shape: &Shape, roof: &Roof, shadow: [f32; 2]) {
    let [x0, y0, x1, y1] = shape.bounds(canvas.size, shadow[0].abs().max(shadow[1].abs()));
    // Shadow first, on whatever lies under it but other buildings.
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let i = y * canvas.size + x;
            if canvas.mask[i] == 0
                && shape.locate(px - shadow[0], py - shadow[1], 0.0).is_some()
                && shape.locate(px, py, 0.0).is_none()
            {
                canvas.shade(x, y, 0.55);
            }
        }
    }
    for y in y0..y1 {
        for x in x0..x1 {
            let Some((part, u, v)) = shape.locate(x as f32 + 0.5, y as f32 + 0.5, 0.0) else {
                continue;
            };
            let [_, _, hw, hh] = shape.parts[part];
            let mut colour = roof.colour;
            if roof.pitched {
                // The ridge runs along the part's longer side.
                let side = if hw >= hh { v } else { u };
                let factor = if side < 0.0 { 1.12 } else { 0.82 };
                colour = colour.map(|c| c * factor);
            } else if part == 0
                && roof
                    .units
                    .iter()
                    .any(|[cu, cv, uw, uh]| (u - cu).abs() <= *uw && (v - cv).abs() <= *uh)
            {
                colour = colour.map(|c| c * 0.7);
            }
            // A thin darker edge, as roofs have.
            if hw - u.abs() < 0.8 || hh - v.abs() < 0.8 {
                colour = colour.map(|c| c * 0.85);
            }
            canvas.paint(x, y, colour);
            canvas.mask[y * canvas.size + x] = 1;
        }
    }
}

fn trees(rng: &mut Rng, canvas: &mut Canvas) {
    let size = canvas.size as f32;
    let count = rng.below((12.0 * size * size / (128.0 * 128.0)) as usize + 1);
    for _ in 0..count {
        let (cx, cy) = (rng.range(0.0, size), rng.range(0.0, size));
        let r = rng.range(1.5, 4.5) * size / 128.0;
        let green = jitter(rng, [0.16, 0.3, 0.12], 0.15);
        let [x0, y0, x1, y1] = [cx - r - 2.0, cy - r - 2.0, cx + r + 3.0, cy + r + 3.0]
            .map(|v| v.clamp(0.0, size) as usize);
        for y in y0..y1 {
            for x in x0..x1 {
                let i = y * canvas.size + x;
                if canvas.mask[i] != 0 {
                    continue;
                }
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                if dx * dx + dy * dy <= r * r {
                    canvas.paint(x, y, green.map(|c| c * (0.8 + 0.3 * rng.unit())));
                } else if (dx - 1.5).powi(2) + (dy - 1.5).powi(2) <= r * r {
                    canvas.shade(x, y, 0.7);
                }
            }
        }
    }
}

/// Scene `index` of the stream `config.seed`.
///
/// # Panics
/// When `config.size` is 0 or `min_buildings > max_buildings`.
pub fn generate(config: &SyntheticConfig, index: u64) -> Scene {
    assert!(config.size > 0, "a synthetic tile needs a size ≥ 1");
    assert!(
        config.min_buildings <= config.max_buildings,
        "min_buildings ({}) > max_buildings ({})",
        config.min_buildings,
        config.max_buildings
    );
    let size = config.size;
    let mut rng = Rng::for_item(config.seed, index);
    let mut canvas = Canvas {
        size,
        rgb: vec![[0.0; 3]; size * size],
        mask: vec![0; size * size],
    };
    ground(&mut rng, &mut canvas);
    vegetation(&mut rng, &mut canvas);
    let angles = roads(&mut rng, &mut canvas);
    buildings(&mut rng, &mut canvas, config, &angles);
    trees(&mut rng, &mut canvas);
    let gain = rng.range(0.85, 1.15);
    let offset = rng.range(-0.05, 0.05);
    let mut image = vec![0.0; 3 * size * size];
    for (i, px) in canvas.rgb.iter().enumerate() {
        for (c, value) in px.iter().enumerate() {
            let noisy = value * gain + offset + config.noise * rng.normal();
            image[c * size * size + i] = noisy.clamp(0.0, 1.0);
        }
    }
    Scene {
        size,
        image,
        mask: canvas.mask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_index_give_the_same_scene() {
        let config = SyntheticConfig::new().with_seed(3);
        assert_eq!(generate(&config, 5), generate(&config, 5));
        assert_ne!(generate(&config, 5), generate(&config, 6));
        assert_ne!(
            generate(&config, 5),
            generate(&config.clone().with_seed(4), 5)
        );
    }

    #[test]
    fn shapes_and_ranges() {
        let scene = generate(&SyntheticConfig::new().with_size(64), 0);
        assert_eq!(scene.image.len(), 3 * 64 * 64);
        assert_eq!(scene.mask.len(), 64 * 64);
        assert!(scene.image.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(scene.mask.iter().all(|&m| m <= 1));
    }

    #[test]
    fn scenes_have_buildings_but_are_mostly_background() {
        let config = SyntheticConfig::new();
        let fractions: Vec<f32> = (0..50)
            .map(|i| generate(&config, i).building_fraction())
            .collect();
        let mean = fractions.iter().sum::<f32>() / 50.0;
        assert!(
            fractions.iter().filter(|&&f| f > 0.0).count() >= 45,
            "{fractions:?}"
        );
        assert!((0.05..0.45).contains(&mean), "mean building share {mean}");
    }

    #[test]
    fn no_roof_colour_is_a_giveaway() {
        // Over many scenes, the mean building colour is within the range of background colours.
        let config = SyntheticConfig::new();
        let (mut inside, mut outside) = ([0.0f64; 3], [0.0f64; 3]);
        let (mut n_in, mut n_out) = (0.0, 0.0);
        for i in 0..40 {
            let s = generate(&config, i);
            let plane = s.size * s.size;
            for p in 0..plane {
                let target = if s.mask[p] == 1 {
                    &mut inside
                } else {
                    &mut outside
                };
                for (c, sum) in target.iter_mut().enumerate() {
                    *sum += s.image[c * plane + p] as f64;
                }
                if s.mask[p] == 1 {
                    n_in += 1.0
                } else {
                    n_out += 1.0
                }
            }
        }
        for c in 0..3 {
            let (a, b) = (inside[c] / n_in, outside[c] / n_out);
            assert!(
                (a - b).abs() < 0.12,
                "channel {c}: buildings {a:.3}, background {b:.3}"
            );
        }
    }
}
