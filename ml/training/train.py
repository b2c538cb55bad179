"""Group, cross-validate, train on every open subject and export: ``python -m ml.training.train``.

Writes model/<site>/model.tflite and model/<site>/card.json. The card's evidence is the
repeated subject-grouped cross-validation of exactly this recipe (ml.training.cv); the
shipped model is then fitted on all open subjects, so there is no held-out split to
re-evaluate. ``--cv-only --cv-out FILE`` runs the CV of another label rule for comparison,
and ``--compare-cv FILE`` puts that result into the card.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ml.card import card_from_dict
from ml.images import decode_image
from ml.preprocess import InputSpec, prepare_input
from ml.segmentation import segment_conjunctiva
from ml.training.card_text import card_template
from ml.training.cv import CLIP_G_DL, LABEL_RULES, cross_validate, training_subjects
from ml.training.data import (
    REPO_ROOT,
    Subject,
    labels_sha256,
    load_crop,
    load_samples,
    resolve_dataset_dir,
    subjects_from_groups,
)
from ml.training.features import feature_names, features_from_table, pixel_table
from ml.training.fingerprint import NEAR_MAD, duplicate_groups
from ml.training.graph import OUTPUT_COLUMNS
from ml.training.recipe import RecipeConfig, Table, compute_features, fit_recipe, predict_columns
from ml.training.synthetic import encode_png, flatten_on_skin

logger = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = REPO_ROOT / "model"
VERSION = "conjunctiva-2.0.0"
MODEL_SELECTION = (
    "Chosen by single 5-fold subject-grouped CV runs (fingerprint groups, scored on clean "
    "subjects; soft-histogram thresholds fitted once on all images, so slightly optimistic; "
    "AUC / Hb MAE in g/dL), label rule median vs drop: MLP classifier bag (3 x 16 units, "
    "L2 1, lbfgs) AUC 0.787 vs 0.772; the same with adam (v1's solver) 0.774; L2 10 "
    "0.756; gradient-boosted trees classifier 0.797 vs 0.778. Hb: MLP regressor bag "
    "(16 units, L2 3) MAE 1.64 vs 1.56, its Hb ranking as AUC 0.73; gradient-boosted trees "
    "regressor MAE 1.50 vs 1.44 (AUC 0.74-0.76); ridge 1.56. P derived from the Hb "
    "regression alone (P(Hb < 11) from a predictive distribution) would have ranked worse "
    "(AUC about 0.75) than the classifier, so P comes from the classifier and the Hb "
    "estimate from the regressor, made to agree in the graph (hb.consistency). Gradient-"
    "boosted trees were better for Hb but were not built into the TFLite graph in the time "
    "available (a next step, as is training the Hb regressor on the drop rule's rows, which "
    "gave the lower MAE, while the classifier keeps the median rule's rows). Clipping the "
    "standardised features at +-3 (--feature-clip 3, meant to steady the automatic path) "
    "gave 0.77 / automatic 0.60 on the first fold (0.80 / 0.59 without) and was stopped "
    "there. The machine was "
    "shared and heavily loaded, which bounded how many runs could be made."
)
INPUT_SIZE = 112
N_REFERENCE = 12  # open images whose exported outputs the card records (tests re-check them)


def grouping_report(subjects: list[Subject]) -> dict[str, Any]:
    spanning = [s for s in subjects if len(s.subject_ids) > 1]
    return {
        "method": (
            "images joined when they share a subject_id, an identical masked-colour "
            "fingerprint under any of the 8 rotations/flips, or 16x16 masked thumbnails "
            f"within a mean absolute difference of {NEAR_MAD}/255 under the 8 variants "
            "(nearest different images sit at 5.3 or more); union-find"
        ),
        "n_images": sum(len(s.samples) for s in subjects),
        "n_subjects": len(subjects),
        "n_clean_subjects": sum(s.clean for s in subjects),
        "n_subjects_with_conflicting_hb": sum(s.conflicting_hb for s in subjects),
        "groups_spanning_several_subject_ids": len(spanning),
        "images_in_those_groups": sum(len(s.samples) for s in spanning),
        "ok_flagged_images_in_those_groups": sum(
            x.qc_flag == "ok" for s in spanning for x in s.samples
        ),
        "spanning_groups": [
            {
                "files": [x.file.rsplit("/", 1)[-1] for x in s.samples],
                "hb_g_dl": [x.hb_g_dl for x in s.samples],
            }
            for s in spanning
        ],
    }


def automatic_table(rgb: np.ndarray, mask: np.ndarray, index: int, spec: InputSpec) -> Table:
    """The crop flattened onto skin, re-segmented as the runtime's automatic path does."""
    flat = decode_image(encode_png(flatten_on_skin(rgb, mask, index=index)))
    auto_mask = segment_conjunctiva(flat.rgb)
    return pixel_table(prepare_input(flat.rgb, auto_mask, spec)[0])


def check_graph_agreement(params: Any, tensors: list[np.ndarray]) -> float:
    """Largest relative difference between NumPy features and the in-graph TF features."""
    from ml.training.graph import features_for_check

    worst = 0.0
    for t in tensors:
        c, m = pixel_table(t)
        ref = features_from_table(c, m, params.thresholds, params.widths)
        got = features_for_check(t, params)
        worst = max(worst, float(np.max(np.abs(ref - got) / (np.abs(ref) + 1e-2))))
    return worst


def tflite_columns(blob: bytes, tensors: list[np.ndarray]) -> np.ndarray:
    from ml.runtime import Interpreter

    interpreter = Interpreter(model_content=blob, num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    rows = []
    for t in tensors:
        interpreter.set_tensor(inp, t[None].astype(np.float32))
        interpreter.invoke()
        rows.append(np.asarray(interpreter.get_tensor(out)).reshape(-1))
    return np.stack(rows)


def comparison(other: dict[str, Any]) -> dict[str, Any]:
    """The part of another label rule's CV that the card shows next to the shipped rule's."""
    return {
        "other_rule": other["label_rule"],
        "other_rule_text": other["label_rule_text"],
        "other_scheme": other["scheme"],
        "other_n_training_subjects_available": other["n_training_subjects_available"],
        "other_auc": other["auc"],
        "other_auc_automatic": other["auc_automatic"],
        "other_at_medium_threshold": other["at_medium_threshold"],
        "other_at_high_threshold": other["at_high_threshold"],
        "other_hb": other["hb"],
        "note": "same folds' seeds, same clean test subjects; only the training rows differ",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset-dir", help="labelled dataset (else $HEALTHGUARD_DATASET_DIR)")
    parser.add_argument("--model-dir", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--site", default="conjunctiva", choices=["conjunctiva", "fingernail"])
    parser.add_argument("--version", help=f"default: {VERSION} / fingernail-1.0.0")
    parser.add_argument("--label-rule", choices=sorted(LABEL_RULES), default="median")
    parser.add_argument("--cv-repeats", type=int, default=5)
    parser.add_argument(
        "--feature-clip", type=float, default=0.0, help="clip standardised features (0: off)"
    )
    parser.add_argument("--skip-cv", action="store_true", help="no CV (a smoke run only)")
    parser.add_argument("--cv-only", action="store_true", help="run the CV, write --cv-out")
    parser.add_argument("--cv-out", help="where --cv-only writes its JSON")
    parser.add_argument("--compare-cv", help="a --cv-only result to record for comparison")
    parser.add_argument(
        "--cv-in", help="reuse a --cv-only result of this same recipe and rule instead of rerunning"
    )
    parser.add_argument(
        "--attach-compare",
        help="only record this --cv-only result as the card's label_rule_comparison, then stop",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.attach_compare:
        card_path = Path(args.model_dir) / args.site / "card.json"
        card = json.loads(card_path.read_text(encoding="utf-8"))
        compare = json.loads(Path(args.attach_compare).read_text(encoding="utf-8"))
        card["evaluation"]["label_rule_comparison"] = comparison(compare)
        card["training"]["model_selection"] = MODEL_SELECTION
        card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        return 0

    dataset_dir = resolve_dataset_dir(args.dataset_dir)
    if dataset_dir is None or not (dataset_dir / "labels.csv").is_file():
        print("no dataset: pass --dataset-dir or set HEALTHGUARD_DATASET_DIR", file=sys.stderr)
        return 2
    if args.site == "fingernail":
        # Its own data (nail boxes), labels (adult cut-offs) and session-grouped CV.
        from ml.training.nails_train import VERSION as NAIL_VERSION
        from ml.training.nails_train import train_fingernail

        summary = train_fingernail(
            dataset_dir,
            Path(args.model_dir),
            version=args.version or NAIL_VERSION,
            skip_cv=args.skip_cv,
            cv_repeats=args.cv_repeats,
        )
        print(json.dumps(summary, indent=2))
        return 0
    args.version = args.version or VERSION
    cfg = RecipeConfig(feature_clip=args.feature_clip)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)

    # 112x112 input, 2x2 pooling in the graph: features over 56x56 pixels (about 1 ms).
    spec = InputSpec(size=INPUT_SIZE)
    samples = load_samples(dataset_dir, args.site, keep_conflicting_label=True)
    crops = [load_crop(dataset_dir, s) for s in samples]
    groups = duplicate_groups([s.file for s in samples], [s.subject_id for s in samples], crops)
    subjects = subjects_from_groups(samples, groups.group_of, cfg.cutoff_g_dl)
    report = grouping_report(subjects)
    logger.info(
        "%d images -> %d subjects; %d groups span several subject ids (%d images)",
        report["n_images"],
        report["n_subjects"],
        report["groups_spanning_several_subject_ids"],
        report["images_in_those_groups"],
    )
    index = {s.file: i for i, s in enumerate(samples)}
    tensors = {s.image.file: prepare_input(*crops[index[s.image.file]], spec)[0] for s in subjects}
    tables = {f: pixel_table(t) for f, t in tensors.items()}
    auto_tables = {
        s.image.file: automatic_table(*crops[index[s.image.file]], i, spec)
        for i, s in enumerate(subjects)
        if s.clean
    }
    del crops

    cv = None
    if args.cv_in:
        cv = json.loads(Path(args.cv_in).read_text(encoding="utf-8"))
        if cv["label_rule"] != args.label_rule or cv["recipe"] != cfg.as_dict():
            raise SystemExit(f"{args.cv_in} is the CV of another rule or recipe")
    elif not args.skip_cv:
        cv = cross_validate(
            subjects, tables, auto_tables, cfg, rule=args.label_rule, repeats=args.cv_repeats
        )
        cv["grouping"] = report
        cv["recipe"] = cfg.as_dict()
    if args.cv_only:
        text = json.dumps(cv, indent=2)
        if args.cv_out:
            Path(args.cv_out).write_text(text + "\n", encoding="utf-8")
        print(text)
        return 0

    import tensorflow as tf

    tf.random.set_seed(cfg.seed)
    from ml.training.graph import export_tflite

    train = training_subjects(subjects, args.label_rule)
    y = np.array([s.label for s in train])
    hb = np.array([s.hb_g_dl for s in train])
    fitted = fit_recipe([tables[s.image.file] for s in train], y, hb, cfg)
    params = fitted.params
    check_tensors = [tensors[s.image.file] for s in train[:40]]
    worst = check_graph_agreement(params, check_tensors[:20])
    logger.info("NumPy vs TF features: worst relative difference %.2e", worst)
    if worst > 1e-3:
        raise SystemExit(f"in-graph features disagree with NumPy ones ({worst:.2e})")

    site_dir = Path(args.model_dir) / args.site
    blob = export_tflite(params, site_dir / "model.tflite", spec.size)
    got = tflite_columns(blob, check_tensors)
    ref = predict_columns(
        params,
        compute_features(
            [tables[s.image.file] for s in train[:40]], params.thresholds, params.widths
        ),
    )
    diffs = np.abs(got[:, : ref.shape[1]] - ref).max(axis=0)
    logger.info("NumPy recipe vs exported TFLite: worst column differences %s", diffs)
    if diffs[0] > 1e-3 or diffs[1] > 1e-2 or diffs[2] > 1e-2:
        raise SystemExit(f"the exported model disagrees with the NumPy recipe ({diffs})")
    # Agreement of P and the Hb estimate, on every training subject (NumPy twin, exact).
    full = predict_columns(
        params,
        compute_features(
            [tables[s.image.file] for s in subjects], params.thresholds, params.widths
        ),
    )
    bad = int(
        ((full[:, 0] >= cfg.high) & (full[:, 1] >= cfg.cutoff_g_dl)).sum()
        + ((full[:, 0] < cfg.low) & (full[:, 1] < cfg.cutoff_g_dl)).sum()
    )
    if bad:
        raise SystemExit(f"P(anemic) and the Hb estimate contradict on {bad} open subjects")

    n_params = sum(
        m.w1.size + m.b1.size + m.w2.size + m.b2.size for m in (*params.mlps, *params.hb.mlps)
    )
    names = feature_names(cfg.n_thresholds)
    card = card_template(args.site, args.version)
    card["created_utc"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    card["input"] = {
        "name": "image_and_mask",
        "dtype": "float32",
        "shape": [1, spec.size, spec.size, 4],
        "size": spec.size,
        "scale": spec.scale,
        "interpolation": spec.interpolation,
        "mask_threshold": spec.mask_threshold,
        "channels": "0-2: RGB scaled to [0, 1] (pixel / 255); 3: conjunctiva mask in {0, 1}",
    }
    card["output"] = {
        "name": "columns",
        "shape": [1, len(OUTPUT_COLUMNS) + len(names)],
        "columns": [*OUTPUT_COLUMNS, *(f"feature:{n}" for n in names)],
        "meaning": {
            "p_anemic": f"calibrated probability that Hb < {cfg.cutoff_g_dl} g/dL",
            "hb_mean_g_dl": "haemoglobin estimate (g/dL), on the cut-off side the risk level says",
            "hb_scale_g_dl": "locally adaptive spread of the estimate (g/dL) for the interval",
        },
    }
    card["model"] = {
        "file": "model.tflite",
        "sha256": hashlib.sha256(blob).hexdigest(),
        "size_bytes": len(blob),
        "tensorflow_version": tf.__version__,
        "mlp_parameters": int(n_params),
        "features": names,
        "feature_thresholds": np.round(params.thresholds.astype(np.float64), 7).tolist(),
        "feature_widths": np.round(params.widths.astype(np.float64), 7).tolist(),
        "platt": {"a": round(params.platt_a, 4), "b": round(params.platt_b, 4)},
        "numpy_vs_graph_feature_max_rel_diff": float(f"{worst:.2e}"),
        "numpy_vs_tflite_column_max_abs_diff": [float(f"{d:.2e}") for d in diffs],
    }
    card["hb"] = {
        "cutoff_g_dl": cfg.cutoff_g_dl,
        "interval": {
            "level": cfg.interval_level,
            "method": (
                "normalised split-conformal: scale = exp(ridge fit of log(|residual| + 0.1) "
                "on the standardised features, residuals out-of-fold on the training "
                "subjects); conformal_quantile = the ceil((n + 1) 0.9) / n quantile of the "
                "out-of-fold |residual| / scale; interval = estimate -+ quantile * scale"
            ),
            "conformal_quantile": round(fitted.conformal_quantile, 4),
            "clip_g_dl": list(CLIP_G_DL),
        },
        "consistency": (
            "p_anemic comes from the classifier bag; the Hb estimate from the regressor bag, "
            "then moved inside the graph to the side of the cut-off the risk level says: "
            f"P >= {cfg.high} (HIGH) caps it at {cfg.cutoff_g_dl - cfg.agree_margin_g_dl}, "
            f"P < {cfg.low} (LOW) floors it at {cfg.cutoff_g_dl}, MEDIUM leaves it. So HIGH "
            "never comes with an estimate >= the cut-off, nor LOW with one below it. Training "
            "refuses to export if any open subject contradicts this."
        ),
        "evaluation": cv["hb"] if cv else None,
    }
    card["training"] = {
        "command": "python -m ml.training.train --dataset-dir DIR",
        "config": cfg.as_dict(),
        "dataset": "CP-AnemiC palpebral conjunctiva crops (all open subjects)",
        "labels_sha256": labels_sha256(dataset_dir),
        "label_rule": args.label_rule,
        "label_rule_text": LABEL_RULES[args.label_rule],
        "n_train_subjects": len(y),
        "n_train_anemic": int(y.sum()),
        "n_train_non_anemic": int(len(y) - y.sum()),
        "grouping": report,
        "model_selection": MODEL_SELECTION,
    }
    if cv:
        compare = (
            json.loads(Path(args.compare_cv).read_text(encoding="utf-8"))
            if args.compare_cv
            else None
        )
        card["evaluation"] = {
            "kind": "repeated subject-grouped cross-validation of the shipped recipe",
            "command": (
                "python -m ml.training.train --dataset-dir DIR "
                f"--label-rule {args.label_rule} --cv-repeats {args.cv_repeats}"
            ),
            **{k: v for k, v in cv.items() if k not in ("grouping", "recipe")},
            "label_rule_comparison": comparison(compare) if compare else None,
        }
        card["risk"]["confidence_by_level"] = cv["confidence_by_level"]
    site_dir.mkdir(parents=True, exist_ok=True)
    card_path = site_dir / "card.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")

    # What the service will answer for a fixed set of open images, through ml.runtime.
    from ml.runtime import RUNTIME_NAME, Model

    model = Model(site_dir / "model.tflite", card_from_dict(card))
    reference = []
    for s in sorted(subjects, key=lambda s: s.image.file)[:: max(1, len(subjects) // N_REFERENCE)][
        :N_REFERENCE
    ]:
        # The model's own outputs, the photo gate aside (its figures are in gate.json).
        out = model.predict(decode_image((dataset_dir / s.image.file).read_bytes()), gate=False)
        reference.append(
            {
                "file": s.image.file,
                "sha256": hashlib.sha256((dataset_dir / s.image.file).read_bytes()).hexdigest(),
                "probability": round(out.probability, 6),
                "hb_estimate_g_dl": out.hb_estimate_g_dl,
                "hb_interval_g_dl": list(out.hb_interval_g_dl),
            }
        )
    card["reference_outputs"] = {
        "what": "Model.predict on these open images (masked crops) right after export",
        "runtime": RUNTIME_NAME,
        "images": reference,
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s (%d bytes) and card.json", site_dir / "model.tflite", len(blob))
    summary = (
        {k: cv[k] for k in ("auc", "auc_automatic", "hb", "confidence_by_level")} if cv else {}
    )
    print(json.dumps({"evaluation": summary, "model_bytes": len(blob)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
