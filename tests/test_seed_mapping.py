"""Column mapping, category synonyms and maps, balancing and the dataset options (no model, no dataset)."""

from __future__ import annotations

import pytest

from data_seed.categories import Balancer, CategoryMapper, load_category_map
from data_seed.demo import demo_items
from data_seed.mapping import ColumnMap, color_names
from data_seed.options import DatasetOptions, parse_seed_args
from similarity.errors import ConfigError
from similarity.records import CATEGORIES, Product

COLUMNS = ["id", "title", "img", "details", "cats", "price", "meta.with.dots"]


def test_mapping_reads_columns_dotted_paths_into_json_text_and_dicts():
    wanted = {"name": "title", "brand": "details.Brand", "colors": "details.Color", "image": "img"}
    columns = ColumnMap.resolve(wanted, COLUMNS)
    assert columns.needed_columns() == ["title", "details", "img", "price"]  # price: a same-named default
    row = {"title": "Trail Runner", "details": '{"Brand": "Acme", "Color": "Navy Blue"}', "img": b"x", "price": "12"}
    assert columns.metadata(row) == {"name": "Trail Runner", "brand": "Acme", "colors": ["navy"], "price": "12"}
    as_dict = {**row, "details": {"Brand": "Zenith", "Color": ["Sea Green", "Off White"]}}
    assert columns.metadata(as_dict)["brand"] == "Zenith" and columns.metadata(as_dict)["colors"] == ["green", "white"]
    python_text = {**row, "details": "{'Brand': 'Globex', 'Color': None}"}  # written by Python, not JSON
    assert columns.metadata(python_text) == {"name": "Trail Runner", "brand": "Globex", "price": "12"}
    broken = {**row, "details": "{not json at all"}
    assert "brand" not in columns.metadata(broken)


def test_a_column_whose_name_has_dots_is_read_whole():
    columns = ColumnMap.resolve({"image": "img", "description": "meta.with.dots"}, COLUMNS)
    assert columns.metadata({"img": b"", "meta.with.dots": "plain text"})["description"] == "plain text"


def test_a_missing_column_names_the_real_columns():
    with pytest.raises(ConfigError) as err:
        ColumnMap.resolve({"image": "img", "brand": "specs.Brand"}, COLUMNS, "The dataset 'x'")
    message = str(err.value)
    assert "'specs'" in message and "--column brand=specs.Brand" in message
    assert "its columns: id, title, img, details, cats, price, meta.with.dots" in message
    with pytest.raises(ConfigError, match=r"no image column.*columns: id, title"):
        ColumnMap.resolve({"name": "title"}, COLUMNS)


def test_lists_keep_their_most_specific_item_except_list_fields():
    columns = ColumnMap.resolve({"image": "img", "subcategory": "cats", "tags": "cats"}, COLUMNS)
    meta = columns.metadata({"img": b"", "cats": ["Clothing", "Women", "Sneakers"]})
    assert meta == {"subcategory": "Sneakers", "tags": ["Clothing", "Women", "Sneakers"]}


@pytest.mark.parametrize(
    ("value", "category"),
    [
        ("Footwear", "shoes"), ("Handbags", "bags"), ("Mobile Phones", "electronics"), ("Watches", "watches"),
        ("meta_Electronics", "electronics"), ("meta_Cell_Phones_and_Accessories", "electronics"),
        ("Shoulder Bags", "bags"), ("Smart Watches", "electronics"), ("Flip Flops", "shoes"), ("Sandal", "shoes"),
        ("Fruits & Vegetables", "fruits-vegetables"), ("namkeen", "snacks"), ("Backpacks", "bags"),
        ("Apparel", None), ("Accessories", None), ("meta_Grocery_and_Gourmet_Food", None),
    ],
)  # fmt: skip
def test_built_in_synonyms(value, category):
    assert CategoryMapper().lookup(value) == category


def test_unmapped_values_become_other_keep_their_value_and_are_counted():
    mapper = CategoryMapper()
    rows = [{"category": "Apparel"}] * 3 + [{"category": "Personal Care"}] + [{"category": "Footwear"}]
    out = [mapper.apply(dict(row)) for row in rows]
    assert [m["category"] for m in out] == ["other"] * 4 + ["shoes"]
    assert out[0]["subcategory"] == "Apparel" and out[4]["subcategory"] == "Footwear"
    assert mapper.unmapped.most_common() == [("Apparel", 3), ("Personal Care", 1)]
    lines = mapper.summary()
    assert lines[0] == "categories: other 4, shoes 1"
    assert "'Apparel' (3), 'Personal Care' (1)" in lines[1] and "--map-category" in lines[1]
    # the app's own normalisation agrees: the mapped value survives Product.from_metadata
    assert Product.from_metadata("x", out[4]).category == "shoes"
    assert Product.from_metadata("x", out[0]).subcategory == "apparel"


def test_an_unknown_category_falls_back_to_the_subcategory_and_a_list_tries_the_specific_end_first():
    mapper = CategoryMapper()
    assert mapper.apply({"category": "Accessories", "subcategory": "Handbags"}) == {
        "category": "bags", "subcategory": "Handbags",
    }  # fmt: skip
    assert (
        mapper.apply({"category": ["Clothing, Shoes & Jewelry", "Women", "Shoes", "Sneakers"]})["category"] == "shoes"
    )
    assert mapper.apply({"category": "Accessories", "subcategory": "Belts"})["category"] == "other"
    assert mapper.apply({})["category"] == "other" and not mapper.unmapped.get("")


def test_user_maps_win_over_the_table_and_a_bad_target_names_the_categories(tmp_path):
    mapper = CategoryMapper({"Footwear": "other", "meta_Grocery_and_Gourmet_Food": "Snacks"})
    assert mapper.lookup("footwear") == "other" and mapper.lookup("Grocery and Gourmet Food") == "snacks"
    with pytest.raises(ConfigError, match=r"Unknown app category 'sneakers'.*bags, electronics"):
        CategoryMapper({"Footwear": "sneakers"})


def test_category_map_files(tmp_path):
    lines = tmp_path / "map.txt"
    lines.write_text("# source=category\nPersonal Care = other\nSports = Equipment=shoes\n\n")
    assert load_category_map(lines) == {"Personal Care": "other", "Sports = Equipment": "shoes"}
    as_json = tmp_path / "map.json"
    as_json.write_text('{"Apparel": "other", "Topwear": "other"}')
    assert load_category_map(as_json) == {"Apparel": "other", "Topwear": "other"}
    bad_line = tmp_path / "bad.txt"
    bad_line.write_text("Apparel=other\njust a value\n")
    with pytest.raises(ConfigError, match="line 2: expected 'Source value=category'"):
        load_category_map(bad_line)
    for text, message in (('{"a": ', "not valid JSON"), ('{"a": 3}', "must map text to text")):
        bad_line.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_category_map(bad_line)
    with pytest.raises(ConfigError, match="Could not read the category map file"):
        load_category_map(tmp_path / "missing.txt")


def test_balancer_caps_each_category_and_knows_when_all_are_full():
    balance = Balancer(2)
    admitted = [c for c in ["shoes"] * 5 + ["bags"] * 3 if balance.admit(c)]
    assert admitted == ["shoes", "shoes", "bags", "bags"] and balance.dropped == 4 and not balance.full
    for category in CATEGORIES:
        balance.admit(category)
        balance.admit(category)
    assert balance.full and "passed over" in balance.summary()[0]
    assert Balancer(None).admit("shoes") and not Balancer(None).full


def test_seed_args_parse_and_bad_ones_give_a_config_error():
    options = parse_seed_args(
        '--column name=productDisplayName --column "brand=details.Brand" --map-category "Personal Care=other" '
        "--per-category 50 --image-column img --split validation"
    )
    assert options.column_map() == {"image": "img", "name": "productDisplayName", "brand": "details.Brand"}
    assert options.map_category == (("Personal Care", "other"),) and options.per_category == 50
    assert options.split == "validation" and parse_seed_args("") == DatasetOptions()
    for text, message in (
        ("--column name", "takes NAME=VALUE"),
        ("--column colour=x", "unknown product field 'colour'"),
        ("--per-category 0", "at least 1"),
        ("--per-category many", "invalid int value"),
        ("--bogus 1", "unrecognized arguments"),
        ('--column "name=x', "check its quotes"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_seed_args(text)


def test_colour_words_come_out_as_the_app_spells_them():
    assert color_names("Navy Blue, Off White,Charcoal") == ["navy", "white", "grey"]
    assert color_names(["Coffee Brown", "Turquoise Blue", "Multi", ""]) == ["brown", "blue", "multicolor"]


def test_every_demo_name_ends_in_a_proper_singular():
    names = [item.metadata["name"] for item in demo_items()]
    last_words = {name.split()[-1] for name in names}
    assert last_words == {
        "Backpack", "Tote", "Handbag", "Sneaker", "Boot", "Sandal", "Analog", "Chronograph", "Digital",
        "Mobile", "Laptop", "Smartwatch", "Audio", "Chips", "Namkeen", "Fruit", "Vegetable",
    }  # fmt: skip
    assert not any(name.endswith(("che", "Smartwatche")) for name in names)
