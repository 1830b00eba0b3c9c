"""bench.render: the BENCHMARKS tables come from the JSON files as they are, older files included."""
from hw6.tools import bench


def _precision_result(**extra) -> dict:
    return {"machine": "Test CPU", "device": "cpu", "cores": 2, "torch": "2.x", "python": "3.x", "seg_data": "synthetic",
            "command": "python bench.py", "precision_seeds": [0, 1], "dice_fp32_per_seed": [0.81, 0.79],
            "dice_bf16_per_seed": [0.8, 0.8], "dice_fp32": 0.8, "dice_bf16": 0.8, "dice_bf16_minus_fp32": 0.0, **extra}


def test_render_names_the_precision_protocol_and_defaults_older_files_to_the_constant_rate():
    older = _precision_result()  # written before the recipe and the schedule were recorded
    labelled = _precision_result(precision_recipe="best", precision_schedule="cosine", label="fp32 against bf16 only")
    text = bench.render([labelled, older])
    old_table, new_table = text.split("## Test CPU")[1:3]
    assert "fp32 against bf16 only" in new_table and "fp32 against bf16 only" not in old_table  # labelled last
    assert "| none |" in old_table and "| assignment |" in old_table
    assert "| cosine |" in new_table and "| best |" in new_table
    assert "| 0.810, 0.790 |" in old_table and "| +0.000 |" in old_table
