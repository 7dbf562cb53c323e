"""The demo recipe (configs/demo.py) on your own kind of data: the synthetic city in the folder layout with a
7-class table (road, sidewalk, building, vegetation, sky, vehicle, person), made by
`python tools/make_synthetic.py --layout folder --classes 7 --out data/synthetic_folder --train 60 --val 10
--height 512 --width 1024`. Fine-tune the demo's 19-class model into it with
`--set model.pretrained=runs/demo/best.pt --set model.map_classes_by_name=true` (README, "Your own data").
"""
from pathlib import Path

from segkit.config import read_config

config = read_config(Path(__file__).with_name("demo.py"))
config.name = "demo_folder"
config.data.root = "data/synthetic_folder"
config.data.layout = "folder"
config.data.classes = "data/synthetic_folder/classes.yaml"
# The table's 7 classes (left unset, model.num_classes follows the table; set, the config builds without the data).
config.model.num_classes = 7
config.loss.class_weights = None  # the demo's weights are per Cityscapes class
