"""Every command-line flag of `main.py`, defined once, typed, bounded and documented.

Flagfiles in `configs/` only override these (and may include a shared base
file with `--flagfile=`). Library code never reads them: `main.py` turns
them into an `ExperimentConfig` (svf_tf/training/experiment_config.py).
"""

from absl import flags

MODES = ("demo", "train", "eval", "train_base", "export", "predict")

# Run.
flags.DEFINE_enum(
    "mode", "demo", MODES,
    "demo: train and evaluate a frozen backbone and SVF on the built-in synthetic dataset "
    "(CPU, minutes) and compare them. train: episodic meta-training. eval: evaluate a "
    "checkpoint on the saved test episodes. train_base: BAM's stage-1 PSPNet on base "
    "classes. export: merge SVF and write a SavedModel. predict: segment a query image "
    "given support images and masks.")
flags.DEFINE_string("work_dir", "runs/demo", "Output directory of the run (checkpoints, "
                    "summaries, flags.txt, summary.json).")
flags.DEFINE_enum("strategy", "mirrored", ["mirrored", "multi_worker", "default"],
                  "mirrored: all local GPUs (or the CPU); multi_worker: "
                  "MultiWorkerMirroredStrategy from TF_CONFIG; default: no distribution "
                  "(debugging).")
flags.DEFINE_integer("seed", 321, "Random seed (the references use 321); each epoch reseeds "
                     "with seed + epoch.", lower_bound=0)

# Data.
flags.DEFINE_enum("dataset", "pascal", ["pascal", "coco"], "Pascal-5i or COCO-20i.")
flags.DEFINE_string("data_root", None, "Dataset root: VOCdevkit/VOC2012 for Pascal, the "
                    "folder with train2014/ val2014/ annotations/ for COCO.")
flags.DEFINE_bool("synthetic", False, "Use the built-in synthetic dataset (Pascal layout, "
                  "generated on first use) instead of --data_root.")
flags.DEFINE_string("train_list", None, "Train list file (lines 'image label', relative "
                    "to --data_root); default: derived from the dataset's split files.")
flags.DEFINE_string("val_list", None, "Val list file; default: derived from the dataset.")
flags.DEFINE_integer("fold", 0, "Fold of the class split.", lower_bound=0, upper_bound=3)
flags.DEFINE_integer("shot", 1, "Support images per episode.", lower_bound=1, upper_bound=20)
flags.DEFINE_enum("coco_split", "interleaved", ["interleaved", "contiguous"],
                  "COCO-20i class split: every 4th class (all reference configs) or blocks "
                  "of 20 (PANet).")
flags.DEFINE_bool("filter_novel", True, "Drop training images containing any novel-class "
                  "pixel (the papers' dagger setting; False reproduces original PFENet).")
flags.DEFINE_string("cache_dir", None, "Cache for lists and the synthetic dataset; default "
                    "$SVF_TF_CACHE or ~/.cache/svf_tf.")
flags.DEFINE_integer("train_size", 473, "Training crop size; (size - 1) % 8 == 0 (473 "
                     "Pascal, 641 COCO).", lower_bound=17)
flags.DEFINE_integer("test_size", 473, "Test resize size; (size - 1) % 8 == 0.",
                     lower_bound=17)
flags.DEFINE_list("scale_range", [], "Training RandScale range min,max; empty: the "
                  "dataset's (Pascal 0.9,1.1, COCO 0.8,1.25). At a reduced --train_size, "
                  "shrink it with the crop so training sees test-time scale (the demo: "
                  "0.2,0.3 at 65 px on the synthetic dataset).")
flags.DEFINE_integer("test_episodes", 1000, "Test episodes per evaluation (BAM/SVF: 1000).",
                     lower_bound=1)
flags.DEFINE_integer("val_images", 0, "train_base: validate on the first N images of the "
                     "val list (0: all of them).", lower_bound=0)
flags.DEFINE_list("eval_seeds", ["321"], "Seeds of the saved test episodes; several give a "
                  "mean and standard deviation (BAM: 510,365,382,322,988).")
flags.DEFINE_string("episodes_dir", None, "Where saved test episodes live; default "
                    "<cache_dir>/episodes (shared by every model, so all are compared on "
                    "the same episodes).")

# Model.
flags.DEFINE_enum("method", "baseline", ["baseline", "pfenet", "bam"],
                  "Few-shot head: the SVF paper's ASPP baseline, PFENet or BAM.")
flags.DEFINE_enum("backbone", "resnet50", ["resnet50", "vgg16"], "Backbone network.")
flags.DEFINE_enum("stem", None, ["keras", "deep"], "ResNet-50 stem; default deep (the "
                  "references' resnet50_v2; needs converted weights).")
flags.DEFINE_enum("dilation", None, ["all_blocks", "torchvision"], "ResNet-50 dilation "
                  "pattern; default per method (baseline/PFENet torchvision, BAM all_blocks).")
flags.DEFINE_bool("vgg_batch_norm", True, "VGG16-BN (the references' VGG) instead of VGG16.")
flags.DEFINE_string("weights", None, "Backbone weights: unset for random, 'imagenet' for "
                    "Keras' files, or a weights file (e.g. converted PyTorch weights).")
flags.DEFINE_string("base_learner", None, "BAM: stage-1 PSPNet weights file whose PPM + "
                    "classifier become BAM's frozen base learner: <work_dir>/best/"
                    "base_learner.weights.h5 of --mode=train_base, or the --output of "
                    "scripts/convert_torch_checkpoint.py --target=pspnet. Pair it with "
                    "--weights=<the matching backbone file>.")

# Fine-tuning.
flags.DEFINE_enum("finetune", "svf", ["freeze", "svf", "part", "full", "bn"],
                  "Backbone fine-tuning: frozen, SVF (singular values), part (whole "
                  "stages), full, or BN affine parameters only.")
flags.DEFINE_list("finetune_stages", ["2", "3", "4"], "Stages that train (paper: 2,3,4).")
flags.DEFINE_list("conv_kinds", ["1x1", "3x3"], "For --finetune=part: which convs train "
                  "(paper Table 6).")
flags.DEFINE_bool("train_bn", False, "Also train BatchNorm gamma/beta (paper Table 4).")
flags.DEFINE_list("svf_factors", ["S"], "SVF factors that train: any of U,S,V (Table 7).")
flags.DEFINE_integer("svf_rank_multiple", 4, "Floor SVF ranks to a multiple of this (4 as "
                     "the authors' code; 1 keeps the exact full rank).", lower_bound=1)
flags.DEFINE_enum("svf_parametrization", "direct", ["direct", "exp"],
                  "S trains directly (authors' code) or as S0 * exp(s') (Appendix D).")
flags.DEFINE_enum("svf_compute", "factored", ["factored", "kernel"],
                  "SVF forward form; factored is faster when only S trains.")

# Head options (unset: the method's as-run default).
flags.DEFINE_enum("kshot_reduce", None, ["sum", "mean"], "How shots are combined (SVF "
                  "baseline as run: sum; PFENet: mean).")
flags.DEFINE_bool("train_down_query", None, "Train the query reduction conv (the SVF "
                  "baseline's code leaves it at its random init; BAM/PFENet train it).")

# Optimisation.
flags.DEFINE_integer("epochs", 200, "Epochs (Pascal 200, COCO 50).", lower_bound=1)
flags.DEFINE_integer("steps_per_epoch", 0, "Cap on steps per epoch (0: the whole train "
                     "list).", lower_bound=0)
flags.DEFINE_integer("batch_size", 8, "Global batch size (episodes per step).", lower_bound=1)
flags.DEFINE_float("lr", 0.015, "Head learning rate (SVF: 0.015).", lower_bound=0.0)
flags.DEFINE_float("backbone_lr_ratio", 0.1, "Backbone (singular values) learning rate as a "
                   "fraction of --lr (references: 0.1).", lower_bound=0.0)
flags.DEFINE_enum("lr_schedule", "constant", ["constant", "cosine", "poly"],
                  "constant: what the SVF code ran; cosine: the paper's text; poly: "
                  "PFENet/BAM (with --poly_multiplier).")
flags.DEFINE_float("poly_multiplier", 10.0, "The references' hidden x10 on every group under "
                   "poly (PFENet/BAM).", lower_bound=0.0)
flags.DEFINE_float("momentum", 0.9, "SGD momentum.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("weight_decay", 1e-4, "Coupled L2 weight decay, as PyTorch SGD.",
                   lower_bound=0.0)
flags.DEFINE_integer("eval_every", 1, "Evaluate every N epochs.", lower_bound=1)
flags.DEFINE_integer("early_stop", 75, "Stop after this many epochs without a better "
                     "validation mIoU (BAM: 75; 0 disables).", lower_bound=0)
flags.DEFINE_bool("jit_compile", False, "XLA-compile the training step.")
flags.DEFINE_enum("mixed_precision", "none", ["none", "mixed_float16", "mixed_bfloat16"],
                  "Keras dtype policy (GPU).")

# Checkpoints, export, predict.
flags.DEFINE_string("checkpoint", None, "Checkpoint to evaluate / export / predict with; "
                    "default the best one in --work_dir.")
flags.DEFINE_string("export_dir", None, "SavedModel directory; default <work_dir>/saved_model.")
flags.DEFINE_string("query", None, "predict: query image file.")
flags.DEFINE_list("supports", [], "predict: support image files.")
flags.DEFINE_list("support_masks", [], "predict: support mask files (index PNGs; the "
                  "class value given by --class_id is foreground).")
flags.DEFINE_integer("class_id", 1, "predict: label value of the object in the support "
                     "masks.", lower_bound=1, upper_bound=254)

