"""Procedural human figures: a kinematic skeleton with joint limits, posed in 3-D, projected and drawn with OpenCV.

Space: camera coordinates, x to the image right, y down, z away from the camera; a figure is built in units of its
standing height with the mid-hip point at the origin, then ``placed`` (scaled to pixels and moved). Projection is
orthographic. Pixel convention as ``edgepose.affine``: integer coordinates are pixel centres (OpenCV's), and drawing
uses 4 fractional bits, so a keypoint is the exact centre of the joint drawn around it.

Facing: yaw 0 faces the camera, so the person's left is on the image right; yaw 90 degrees faces the image right.
Left-side limbs are always drawn a shade darker than right-side ones (besides the face, hair and feet, which show the
facing), so a left/right mix-up is learnable rather than a coin toss.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

SHIFT = 4
ONE = float(1 << SHIFT)
LEFT_SHADE = 0.72  # brightness of left-side limbs relative to right-side ones

# Part ids: a person's label in the scene's label map is base + part id.
TORSO, NECK, HEAD, L_UARM, R_UARM, L_FARM, R_FARM, L_HAND, R_HAND = range(9)
L_THIGH, R_THIGH, L_SHANK, R_SHANK, L_FOOT, R_FOOT = range(9, 15)
NUM_PARTS = 15
# The parts whose pixels make each COCO keypoint visible (anything else on top of it occludes it).
KP_OWNERS: tuple[tuple[int, ...], ...] = (
    (HEAD,), (HEAD,), (HEAD,), (HEAD,), (HEAD,),
    (TORSO, L_UARM), (TORSO, R_UARM), (L_UARM, L_FARM), (R_UARM, R_FARM), (L_FARM, L_HAND), (R_FARM, R_HAND),
    (TORSO, L_THIGH), (TORSO, R_THIGH), (L_THIGH, L_SHANK), (R_THIGH, R_SHANK), (L_SHANK, L_FOOT), (R_SHANK, R_FOOT),
)
# Extra points after the 17 keypoints in Figure.pts.
NECK_BASE, HEAD_C, L_HAND_TIP, R_HAND_TIP, L_TOE, R_TOE, FACE_C, HEAD_UP = range(17, 25)
HULL0 = 25  # 8 torso hull corners follow
# (part, start point, end point, width key, garment) of the capsule parts.
CAPSULES = (
    (NECK, NECK_BASE, HEAD_C, "neck", "skin"),
    (L_UARM, 5, 7, "uarm", "sleeve"), (R_UARM, 6, 8, "uarm", "sleeve"),
    (L_FARM, 7, 9, "farm", "cuff"), (R_FARM, 8, 10, "farm", "cuff"),
    (L_HAND, 9, L_HAND_TIP, "hand", "skin"), (R_HAND, 10, R_HAND_TIP, "hand", "skin"),
    (L_THIGH, 11, 13, "thigh", "pants"), (R_THIGH, 12, 14, "thigh", "pants"),
    (L_SHANK, 13, 15, "shank", "hem"), (R_SHANK, 14, 16, "shank", "hem"),
    (L_FOOT, 15, L_TOE, "foot", "shoes"), (R_FOOT, 16, R_TOE, "foot", "shoes"),
)
LEFT_PARTS = frozenset((L_UARM, L_FARM, L_HAND, L_THIGH, L_SHANK, L_FOOT))
# Radii (start, end) in units of height, before the per-figure width factor.
WIDTHS = {"neck": (0.022, 0.022), "uarm": (0.03, 0.023), "farm": (0.022, 0.017), "hand": (0.019, 0.015),
          "thigh": (0.045, 0.032), "shank": (0.03, 0.02), "foot": (0.018, 0.015)}
# Joint limits in degrees: arm (flexion, abduction, humeral rotation, elbow), leg (flexion, abduction, knee).
ARM_LIMITS = np.array([[-50, 180], [-30, 160], [-40, 100], [0, 150]], dtype=float)
LEG_LIMITS = np.array([[-35, 125], [-15, 50], [0, 150]], dtype=float)
SKIN = np.array([[205, 220, 245], [160, 190, 230], [120, 160, 210], [90, 125, 175], [60, 85, 125], [45, 60, 90]],
                dtype=np.float32)


@dataclass(frozen=True)
class Pose:
    """Angles in radians. arms (2, 4) and legs (2, 3), row 0 left, columns as ARM_LIMITS / LEG_LIMITS."""

    yaw: float
    roll: float
    lean: float
    bend: float
    twist: float
    head: tuple[float, float, float]  # yaw, pitch, roll relative to the torso
    arms: np.ndarray
    legs: np.ndarray


def _u(rng, lo, hi, size=None):
    return rng.uniform(np.deg2rad(lo), np.deg2rad(hi), size)


def sample_pose(rng: np.random.Generator, easy: bool = False) -> Pose:
    """A random pose within the joint limits: standing, walking, free, sitting/crouching or reaching. ``easy``:
    standing or walking, upright, facing the camera (no front/back left-right ambiguity)."""
    mode = rng.choice(2, p=[0.55, 0.45]) if easy else rng.choice(5, p=[0.4, 0.3, 0.06, 0.12, 0.12])
    lo, hi = np.deg2rad(ARM_LIMITS.T)
    arms = np.stack([_u(rng, -20, 35, 2), _u(rng, 0, 30, 2), _u(rng, -10, 60, 2), _u(rng, 0, 50, 2)], axis=1)
    legs = np.stack([_u(rng, -10, 15, 2), _u(rng, -5, 15, 2), _u(rng, 0, 20, 2)], axis=1)
    lean = _u(rng, -10, 20)
    if mode == 1:  # walking / running: opposite swings of arms and legs
        swing = _u(rng, 10, 50) * rng.choice([-1, 1])
        legs[:, 0] = [swing, -swing]
        legs[:, 2] = np.where(legs[:, 0] < 0, _u(rng, 10, 90, 2), _u(rng, 0, 35, 2))
        arms[:, 0] = [-0.8 * swing, 0.8 * swing]
        arms[:, 3] = _u(rng, 10, 100, 2)
    elif mode == 2:  # anything the joints allow
        arms = rng.uniform(lo, hi, (2, 4))
        arms[:, 1] = np.where(arms[:, 0] < np.deg2rad(20), np.abs(arms[:, 1]), arms[:, 1])
        legs = rng.uniform(*np.deg2rad(LEG_LIMITS.T), (2, 3))
        lean = _u(rng, -15, 40)
    elif mode == 3:  # sitting / crouching
        legs = np.stack([_u(rng, 55, 115, 2), _u(rng, -5, 35, 2), _u(rng, 50, 145, 2)], axis=1)
        lean = _u(rng, 0, 35)
    elif mode == 4:  # reaching or waving
        side = rng.integers(3)
        for s in (0, 1):
            if side in (s, 2):
                arms[s] = [_u(rng, 50, 180), _u(rng, 0, 150), _u(rng, -30, 90), _u(rng, 0, 130)]
    kind = 0.0 if easy else rng.random()
    if kind < 0.88:
        roll = rng.normal(0.0, np.deg2rad(7))
    elif kind < 0.97:
        roll = _u(rng, 15, 45) * rng.choice([-1, 1])
    else:
        roll = _u(rng, 65, 115) * rng.choice([-1, 1])
    # Mostly facing towards or away from the camera (as people in robot footage mostly do), some in profile.
    if easy:
        yaw = rng.normal(0.0, np.deg2rad(20))
    else:
        yaw = rng.normal(rng.choice([0.0, np.pi]), np.deg2rad(35)) if rng.random() < 0.75 else rng.uniform(0, 2 * np.pi)
    return Pose(
        yaw=float(yaw), roll=float(roll), lean=float(lean), bend=float(_u(rng, -12, 12)),
        twist=float(_u(rng, -30, 30)), head=(float(_u(rng, -50, 50)), float(_u(rng, -25, 25)),
                                             float(rng.normal(0, np.deg2rad(8)))),
        arms=np.clip(arms, lo, hi), legs=np.clip(legs, *np.deg2rad(LEG_LIMITS.T)),
    )


def _rot(v, axis, angle):
    """Rotate vector(s) v about the unit axis by angle (Rodrigues)."""
    c, s = np.cos(angle), np.sin(angle)
    return v * c + np.cross(axis, v) * s + np.outer(v @ axis, axis).reshape(v.shape) * (1 - c)


def _unit(v):
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _limb(root, f, u, sign, flex, abd, rot, bend, lengths, backward):
    """Two-segment limb from ``root``: flexion towards the front, abduction outwards, then the distal joint bends
    by ``bend`` (elbows forwards, knees ``backward``) in a plane turned by ``rot`` about the proximal segment.
    Returns the middle and end joints and the end direction."""
    d = -u * np.cos(flex) + f * np.sin(flex)
    b = f * np.cos(flex) + u * np.sin(flex)
    d, b = _rot(d, f, abd * sign), _rot(b, f, abd * sign)
    b = _rot(b, d, rot * sign)
    if backward:
        b = -b
    e = np.cos(bend) * d + np.sin(bend) * b
    mid = root + d * lengths[0]
    return mid, mid + e * lengths[1], e


@dataclass(frozen=True)
class Figure:
    """A posed figure: pts (P, 3) with the 17 COCO keypoints first, radii per width key, head radius, hidden (17,)
    face points on the far side of the head (not labelled, as COCO annotators leave them), head angle, style."""

    pts: np.ndarray
    radii: dict
    head_r: float
    hidden: np.ndarray
    style: dict

    def placed(self, scale: float, origin: tuple[float, float]) -> Figure:
        """The figure in pixels: times ``scale`` (pixels per height) with the mid-hip point at ``origin``."""
        pts = self.pts * scale
        pts[:, :2] += np.asarray(origin, dtype=float)
        return replace(self, pts=pts, radii={k: (a * scale, b * scale) for k, (a, b) in self.radii.items()},
                       head_r=self.head_r * scale)

    def extent(self) -> np.ndarray:
        """x0, y0, x1, y1 of the projected points padded by the largest radius (same units as pts)."""
        pad = max(self.head_r, max(max(r) for r in self.radii.values()))
        xy = self.pts[:, :2]
        return np.concatenate([xy.min(axis=0) - pad, xy.max(axis=0) + pad])


def build_figure(pose: Pose, rng: np.random.Generator, style: dict) -> Figure:
    """Forward kinematics of ``pose`` with random body proportions (lengths +-10 %, widths x0.65-1.45)."""
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    f = np.array([np.sin(pose.yaw), 0.0, -np.cos(pose.yaw)])
    left = np.array([np.cos(pose.yaw), 0.0, np.sin(pose.yaw)])
    up = np.array([0.0, -1.0, 0.0])
    u_t = _unit(up + np.tan(pose.lean) * f + np.tan(pose.bend) * left)
    f_t = _unit(np.cross(left, u_t))
    l_t = np.cross(u_t, f_t)
    l_s, f_s = _rot(l_t, u_t, pose.twist), _rot(f_t, u_t, pose.twist)
    torso, shoulder, hip = 0.30 * j(0.9, 1.1), 0.115 * j(0.85, 1.15), 0.08 * j(0.85, 1.15)
    head_r = 0.065 * j(0.88, 1.15)
    pts = np.zeros((HULL0 + 8, 3))
    neck = u_t * torso
    pts[NECK_BASE] = neck
    pts[5], pts[6] = neck + l_s * shoulder - u_t * 0.015, neck - l_s * shoulder - u_t * 0.015
    pts[11], pts[12] = left * hip, -left * hip
    arm_len = (0.17 * j(0.92, 1.08), 0.15 * j(0.92, 1.08))
    leg_len = (0.245 * j(0.92, 1.08), 0.235 * j(0.92, 1.08))
    hand, foot = 0.05 * j(0.85, 1.15), 0.075 * j(0.85, 1.15)
    for s, sign in ((0, 1.0), (1, -1.0)):
        fl, ab, ro, el = pose.arms[s]
        pts[7 + s], pts[9 + s], e = _limb(pts[5 + s], f_s, u_t, sign, fl, ab, ro, el, arm_len, False)
        pts[L_HAND_TIP + s] = pts[9 + s] + e * hand
        fl, ab, kn = pose.legs[s]
        pts[13 + s], pts[15 + s], e = _limb(pts[11 + s], f, up, sign, fl, ab, 0.0, kn, leg_len, True)
        toe = f - e * float(f @ e)
        pts[L_TOE + s] = pts[15 + s] + _unit(toe if np.linalg.norm(toe) > 0.2 else f) * foot
    h_yaw, h_pitch, h_roll = pose.head
    f_h, l_h = _rot(f_t, u_t, h_yaw), _rot(l_t, u_t, h_yaw)
    f_h, u_h = _rot(f_h, l_h, h_pitch), _rot(u_t, l_h, h_pitch)
    l_h, u_h = _rot(l_h, f_h, h_roll), _rot(u_h, f_h, h_roll)
    c = neck + u_h * (0.045 + head_r)
    pts[HEAD_C], pts[FACE_C], pts[HEAD_UP] = c, c + head_r * (0.5 * f_h - 0.12 * u_h), c + u_h * head_r
    face = np.array([[1.0, 0, -0.15], [0.8, 0.38, 0.1], [0.8, -0.38, 0.1], [-0.1, 0.93, -0.05], [-0.1, -0.93, -0.05]])
    offsets = face @ np.stack([f_h, l_h, u_h]) * head_r
    pts[:5] = c + offsets
    hidden = np.zeros(17, dtype=bool)
    hidden[:5] = offsets[:, 2] / head_r > 0.2
    pad, depth = 0.02, (0.065, 0.055)
    for i, (a, side, lat, fwd, vert) in enumerate(((5, 1, l_s, f_s, u_t), (6, -1, l_s, f_s, u_t),
                                                   (11, 1, left, f, up), (12, -1, left, f, up))):
        dz = depth[i // 2]
        base = pts[a] + side * lat * pad + vert * (pad if i < 2 else -pad)
        pts[HULL0 + 2 * i], pts[HULL0 + 2 * i + 1] = base + fwd * dz, base - fwd * dz
    scale = j(0.65, 1.45)
    radii = {k: (a * scale * j(0.9, 1.1), b * scale * j(0.9, 1.1)) for k, (a, b) in WIDTHS.items()}
    cr, sr = np.cos(pose.roll), np.sin(pose.roll)
    pts[:, :2] = pts[:, :2] @ np.array([[cr, sr], [-sr, cr]])
    return Figure(pts=pts, radii=radii, head_r=head_r, hidden=hidden, style=style)


def texture(rng: np.random.Generator, shape: tuple[int, int], colour: np.ndarray, plain: float = 0.4) -> np.ndarray:
    """A fill: a BGR colour (3,) or an (h, w, 3) float32 pattern (stripes, checks or blotches) around ``colour``."""
    kind = rng.random()
    if kind < plain or min(shape) < 2:
        return colour.astype(np.float32)
    h, w = shape
    other = np.clip(colour * rng.uniform(0.4, 1.6) + rng.normal(0, 40, 3), 0, 255).astype(np.float32)
    if kind < plain + (1 - plain) * 0.7:
        xx, yy = np.arange(w, dtype=np.float32)[None, :], np.arange(h, dtype=np.float32)[:, None]
        a = rng.uniform(0, np.pi)
        t = (xx * np.cos(a) + yy * np.sin(a)) / rng.uniform(3, 12)
        if rng.random() < 0.35:  # checks
            t2 = (-xx * np.sin(a) + yy * np.cos(a)) / rng.uniform(3, 12)
            m = (np.floor(t) + np.floor(t2)) % 2
        else:
            m = (t % 1.0) < rng.uniform(0.3, 0.7)
    else:
        small = rng.random((max(2, h // 8), max(2, w // 8))).astype(np.float32)
        m = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    m = np.asarray(m, dtype=np.float32)[..., None]
    return colour.astype(np.float32) * (1 - m) + other * m


def sample_style(rng: np.random.Generator) -> dict:
    """Colours (BGR float32) and garment cut of one person."""
    hsv = np.zeros((4, 1, 3), np.uint8)
    hsv[:, 0, 0] = rng.integers(0, 180, 4)
    hsv[:, 0, 1] = rng.integers(20, 256, 4)
    hsv[:, 0, 2] = rng.integers(35, 256, 4)
    shirt, pants, shoes, hair = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[:, 0].astype(np.float32)
    skin = SKIN[rng.integers(len(SKIN))] * rng.uniform(0.9, 1.1) if rng.random() < 0.85 else rng.uniform(40, 250, 3)
    if rng.random() < 0.8:
        hair = np.array([30, 30, 35]) * rng.uniform(0.5, 3.0) + rng.normal(0, 8, 3)
    return {"shirt": shirt, "pants": pants, "shoes": shoes * 0.6, "hair": np.clip(hair, 0, 255),
            "skin": np.clip(skin, 0, 255).astype(np.float32), "bald": rng.random() < 0.1,
            "sleeves": rng.choice(3, p=[0.5, 0.35, 0.15]), "long_pants": rng.random() < 0.7}


def _fx(p) -> tuple[int, int]:
    return int(round(float(p[0]) * ONE)), int(round(float(p[1]) * ONE))


def capsule_mask(mask: np.ndarray, p0, p1, r0: float, r1: float) -> None:
    """Draw a tapered capsule (radii r0 at p0, r1 at p1; mask pixel coordinates) as 255, anti-aliased."""
    cv2.circle(mask, _fx(p0), int(round(r0 * ONE)), 255, -1, cv2.LINE_AA, SHIFT)
    cv2.circle(mask, _fx(p1), int(round(r1 * ONE)), 255, -1, cv2.LINE_AA, SHIFT)
    d = np.asarray(p1[:2], float) - np.asarray(p0[:2], float)
    n = float(np.hypot(*d))
    if n > 1e-6:
        perp = np.array([-d[1], d[0]]) / n
        poly = [p0[:2] + perp * r0, p1[:2] + perp * r1, p1[:2] - perp * r1, p0[:2] - perp * r0]
        cv2.fillConvexPoly(mask, np.array([_fx(q) for q in poly], np.int32), 255, cv2.LINE_AA, SHIFT)


def _ellipse(mask, centre, axes, angle) -> None:
    cv2.ellipse(mask, _fx(centre), (max(1, int(axes[0] * ONE)), max(1, int(axes[1] * ONE))), float(angle), 0, 360,
                255, -1, cv2.LINE_AA, SHIFT)


class Painter:
    """Composites soft masks onto a uint8 BGR canvas and writes their hard (>= 50 %) pixels into a label map."""

    def __init__(self, canvas: np.ndarray, labels: np.ndarray, person_mask: np.ndarray | None = None) -> None:
        self.canvas, self.labels, self.person_mask = canvas, labels, person_mask
        self.origin = (0, 0)  # image position of pixel (0, 0) of array fills

    def box(self, lo, hi, pad: float) -> tuple[int, int, int, int] | None:
        """Integer pixel box around [lo, hi] (x, y) padded, clipped to the canvas; None when empty."""
        h, w = self.canvas.shape[:2]
        x0, y0 = max(int(np.floor(lo[0] - pad)) - 1, 0), max(int(np.floor(lo[1] - pad)) - 1, 0)
        x1, y1 = min(int(np.ceil(hi[0] + pad)) + 2, w), min(int(np.ceil(hi[1] + pad)) + 2, h)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def apply(self, box, mask: np.ndarray, fill: np.ndarray, shade: float, label: int | None) -> None:
        """Blend ``fill`` (a colour, or an array placed at self.origin) times ``shade`` where ``mask`` is set."""
        x0, y0, x1, y1 = box
        sub = self.canvas[y0:y1, x0:x1]
        if fill.ndim == 3:
            ox, oy = self.origin
            fill = fill[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
        a = mask.astype(np.float32)[..., None] * (1.0 / 255.0)
        sub[...] = np.clip(sub + a * (fill * shade - sub) + 0.5, 0, 255)
        if label is not None:
            hard = mask >= 128
            self.labels[y0:y1, x0:x1][hard] = label
            if self.person_mask is not None:
                self.person_mask[y0:y1, x0:x1][hard] = 255


def _fills(fig: Figure, rng: np.random.Generator, shape: tuple[int, int]) -> dict:
    st = fig.style
    shirt, pants, skin = texture(rng, shape, st["shirt"]), texture(rng, shape, st["pants"]), st["skin"]
    return {"shirt": shirt, "pants": pants, "skin": skin, "shoes": st["shoes"],
            "sleeve": shirt if st["sleeves"] < 2 else skin, "cuff": shirt if st["sleeves"] == 0 else skin,
            "hem": pants if st["long_pants"] else skin}


def _draw_head(p: Painter, fig: Figure, box, label: int) -> None:
    pts, r, st = fig.pts, fig.head_r, fig.style
    x0, y0, x1, y1 = box
    off = np.array([x0, y0], float)
    c, up = pts[HEAD_C, :2] - off, pts[HEAD_UP, :2] - pts[HEAD_C, :2]
    along = float(np.hypot(*up))
    angle = np.degrees(np.arctan2(up[1], up[0])) if along > 1e-6 else 0.0
    head = np.zeros((y1 - y0, x1 - x0), np.uint8)
    _ellipse(head, c, (r * max(0.88, along / r), 0.86 * r), angle)
    p.apply(box, head, st["skin"] if st["bald"] else st["hair"], 1.0, label)
    if (pts[0, 2] - pts[HEAD_C, 2]) / r < 0.35:  # the face looks at least partly towards the camera
        face = np.zeros_like(head)
        _ellipse(face, pts[FACE_C, :2] - off, (0.8 * r, 0.7 * r), angle)
        p.apply(box, np.minimum(face, head), st["skin"], 1.0, label)
    marks = [(k, max(0.25 * r, 1.2), st["skin"], 0.85) for k in (3, 4)]
    marks += [(k, max(0.12 * r, 0.9), np.float32([25, 25, 30]), 1.0) for k in (1, 2)]
    marks += [(0, max(0.17 * r, 1.2), st["skin"], 0.75)]
    for k, rad, colour, shade in marks:
        if not fig.hidden[k]:
            m = np.zeros_like(head)
            cv2.circle(m, _fx(pts[k, :2] - off), int(round(rad * ONE)), 255, -1, cv2.LINE_AA, SHIFT)
            p.apply(box, m, colour, shade, label)


def render_figure(p: Painter, fig: Figure, base: int, rng: np.random.Generator) -> None:
    """Draw a placed figure back to front (painter's order by part depth); its labels are base + part id."""
    pts = fig.pts
    ext = fig.extent()
    roi = p.box(ext[:2], ext[2:], 2.0)
    if roi is None:
        return
    p.origin = roi[:2]
    fills = _fills(fig, rng, (roi[3] - roi[1], roi[2] - roi[0]))
    height = fig.head_r / 0.065
    zc = float(pts[:17, 2].mean())
    items = [(float(pts[HULL0:, 2].mean()) + 0.3 * fig.head_r, TORSO, None)]
    for part, a, b, key, garment in CAPSULES:
        z = 0.5 * float(pts[a, 2] + pts[b, 2]) - (0.05 * fig.head_r if part == NECK else 0.0)
        items.append((z, part, (a, b, key, garment)))
    items.append((min(float(pts[HEAD_C, 2]), items[1][0]) - 0.1 * fig.head_r, HEAD, None))
    for z, part, spec in sorted(items, key=lambda item: (item[0], -item[1]), reverse=True):
        shade = float(np.clip(1.0 - 0.6 * (z - zc) / height, 0.85, 1.15))
        if part == HEAD:
            box = p.box(pts[HEAD_C, :2], pts[HEAD_C, :2], 1.3 * fig.head_r + 1.0)
            if box is not None:
                _draw_head(p, fig, box, base + HEAD)
            continue
        if part == TORSO:
            hull = pts[HULL0:, :2]
            box = p.box(hull.min(axis=0), hull.max(axis=0), 1.0)
            if box is None:
                continue
            mask = np.zeros((box[3] - box[1], box[2] - box[0]), np.uint8)
            corners = cv2.convexHull(np.round((hull - box[:2]) * ONE).astype(np.int32))
            cv2.fillConvexPoly(mask, corners, 255, cv2.LINE_AA, SHIFT)
            p.apply(box, mask, fills["shirt"], shade, base + TORSO)
            continue
        a, b, key, garment = spec
        r0, r1 = (max(r, 1.2) for r in fig.radii[key])
        lo, hi = np.minimum(pts[a, :2], pts[b, :2]), np.maximum(pts[a, :2], pts[b, :2])
        box = p.box(lo, hi, max(r0, r1))
        if box is None:
            continue
        mask = np.zeros((box[3] - box[1], box[2] - box[0]), np.uint8)
        off = np.array(box[:2], float)
        capsule_mask(mask, pts[a, :2] - off, pts[b, :2] - off, r0, r1)
        side = LEFT_SHADE if part in LEFT_PARTS else 1.0
        p.apply(box, mask, fills[garment], shade * side, base + part)
