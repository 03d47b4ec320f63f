"""Seeded ChatGLM3 conversations in which the model must READ its tools from the system prompt.

Every tool is generated: a topic (what it looks up), a subject parameter (a place, a person or an
item) and 0-3 extra parameters (integer, number, boolean, enum, array), each required or optional,
with a name in one of several styles (snake_case, camelCase, prefixes and suffixes) and descriptions
in English or Chinese.  Half the training topics and many parameter nouns are made-up words, so no
tool name repeats often enough to be learnt by heart: the only way to write the right call is to
find the tool whose name or description shares words with the question and copy its name, its
parameter names and the question's values.

The held-out set (eval_set) draws its tools from HELDOUT_* pools whose words never occur in
training (asserted below), its places from data.HELDOUT_*, its numbers from data.heldout_number.

Code requests are answered in ChatGLM3's interpreter format; their programs come from code_programs()
and are run in our sandbox by verify-code.ts before any conversation uses them (prepare.py), so each
observation in the data is what the sandbox really printed, and a program that fails is never trained on.

Development tool only (run with Debian's /usr/bin/python3); nothing at install/run time needs it.
"""
import json
import math
import random

import data
from data import msg

TOOL_PROMPT = data.TOOL_PROMPT
DEFAULT_SYSTEM = data.DEFAULT_SYSTEM
# The engine's own code-interpreter prompt (src/chat/chatglm3.ts CHATGLM3_CODE_INTERPRETER_PROMPT).
CI_PROMPT_ZH = ("你是一位智能AI助手，你叫ChatGLM，你连接着一台电脑，但请注意不能联网。在使用Python解决任务时，你可以运行代码并得到结果，"
                "如果运行结果有错误，你需要尽可能对代码进行改进。你可以处理用户上传到电脑上的文件，文件默认存储路径是/mnt/data/。")
CI_PROMPT_EN = "You are a helpful assistant with a Python code interpreter. Write code to answer the user."

# --- topics: (English words, Chinese phrase, subject kind) -------------------------------
TRAIN_TOPICS = [
    ("weather", "天气", "place"), ("temperature", "气温", "place"), ("air quality", "空气质量", "place"),
    ("population", "人口", "place"), ("time zone", "时区", "place"), ("local time", "当地时间", "place"),
    ("humidity", "湿度", "place"), ("wind speed", "风速", "place"), ("sunrise time", "日出时间", "place"),
    ("sunset time", "日落时间", "place"), ("rainfall", "降雨量", "place"), ("hotel prices", "酒店价格", "place"),
    ("train schedule", "火车时刻表", "place"), ("flight status", "航班状态", "place"), ("traffic", "交通状况", "place"),
    ("news", "新闻", "place"), ("restaurants", "餐厅", "place"), ("museum hours", "博物馆开放时间", "place"),
    ("parking", "停车位", "place"), ("bus routes", "公交路线", "place"), ("uv index", "紫外线指数", "place"),
    ("events", "活动", "place"), ("gas prices", "油价", "place"), ("house prices", "房价", "place"),
    ("hospitals", "医院", "place"), ("schools", "学校", "place"), ("map", "地图", "place"),
    ("forecast", "天气预报", "place"), ("earthquakes", "地震", "place"), ("water level", "水位", "place"),
    ("phone number", "电话号码", "person"), ("email address", "邮箱地址", "person"), ("birthday", "生日", "person"),
    ("salary", "工资", "person"), ("order history", "订单记录", "person"), ("account balance", "账户余额", "person"),
    ("schedule", "日程", "person"), ("address", "地址", "person"), ("profile", "个人资料", "person"),
    ("followers", "粉丝数", "person"), ("credit score", "信用分", "person"), ("tasks", "任务", "person"),
    ("stock price", "股价", "item"), ("product price", "商品价格", "item"), ("movie rating", "电影评分", "item"),
    ("book author", "书的作者", "item"), ("definition", "释义", "item"), ("translation", "翻译", "item"),
    ("inventory", "库存", "item"), ("shipping status", "物流状态", "item"), ("reviews", "评论", "item"),
    ("release date", "发布日期", "item"), ("song lyrics", "歌词", "item"), ("recipe", "菜谱", "item"),
    ("calories", "卡路里", "item"), ("exchange rate", "汇率", "item"), ("package tracking", "快递跟踪", "item"),
    ("nutrition facts", "营养成分", "item"), ("word count", "字数", "item"), ("synonyms", "同义词", "item"),
]
HELDOUT_TOPICS = [
    ("elevation", "海拔", "place"), ("tidal amplitude", "潮汐高度", "place"), ("pollen concentration", "花粉浓度", "place"),
    ("snow depth", "积雪深度", "place"), ("ferry timetable", "轮渡时刻", "place"), ("crime statistics", "治安统计", "place"),
    ("tenancy fees", "租金", "place"), ("noise complaints", "噪音投诉", "place"), ("library branches", "图书馆分馆", "place"),
    ("bike lanes", "自行车道", "place"), ("visa rules", "签证规定", "place"), ("marathon finishers", "马拉松成绩", "place"),
    ("glove measurement", "手套尺码", "person"), ("vacation allowance", "假期天数", "person"), ("blood group", "血型", "person"),
    ("manager", "上级领导", "person"), ("loyalty points", "会员积分", "person"), ("pension", "养老金", "person"),
    ("warranty", "保修期", "item"), ("isbn", "书号", "item"), ("barcode", "条形码", "item"), ("vintage", "年份酒", "item"),
    ("dosage", "剂量", "item"), ("horsepower", "马力", "item"), ("mileage", "里程数", "item"), ("allergens", "过敏原", "item"),
]
EN_VERBS = ["get", "fetch", "query", "lookup", "find", "search", "check", "retrieve", "load", "read", "show", "list", "request",
            "calc", "compute", "scan", "view", "lookupBy", "do", "api", "call", "resolve", "collect", "report", "track", "see"]
HELDOUT_VERBS = ["obtain", "pull", "inspect", "locate"]

# Subject parameter names by kind (training / held-out).
SUBJECT_NAMES = {
    "place": ["city", "location", "place", "city_name", "cityName", "town", "region", "destination", "where"],
    "person": ["name", "person", "user", "username", "userName", "contact", "owner", "who"],
    "item": ["item", "product", "title", "symbol", "query", "keyword", "target", "text"],
}
HELDOUT_SUBJECT_NAMES = {
    "place": ["locale", "municipality", "site", "settlement", "venueCity"],
    "person": ["member", "employee", "customer", "client_name", "staffId"],
    "item": ["label", "ticker", "entry", "sku", "article"],
}
SUBJECT_DESC = {
    "place": [("The city name", "城市名称"), ("A city, e.g. Paris", "城市，例如北京"), ("Location to look up", "要查询的地点")],
    "person": [("Full name of the person", "人的姓名"), ("The user's name", "用户名")],
    "item": [("The item to look up", "要查询的对象"), ("Name or code", "名称或代码")],
}

# Count nouns for integer parameters: (English plural, Chinese counted form, Chinese description).
COUNT_NOUNS = [("days", "天", "天数"), ("results", "条结果", "结果数量"), ("people", "人", "人数"),
               ("nights", "晚", "入住晚数"), ("rooms", "间房", "房间数"), ("pages", "页", "页数"),
               ("items", "件商品", "商品数量"), ("hours", "小时", "小时数"), ("guests", "位客人", "客人数量"),
               ("adults", "个成人", "成人数量"), ("children", "个儿童", "儿童数量"), ("weeks", "周", "周数"),
               ("records", "条记录", "记录数"), ("entries", "个条目", "条目数"), ("years", "年", "年数")]
HELDOUT_COUNT_NOUNS = [("laps", "圈", "圈数"), ("seats", "个座位", "座位数"), ("floors", "层楼", "楼层数"),
                       ("cups", "杯", "杯数"), ("slices", "片", "片数"), ("tickets", "张票", "票数")]
AMOUNT_NOUNS = [("budget", "预算"), ("price", "价格"), ("weight", "重量"), ("distance", "距离"), ("radius", "半径"),
                ("speed", "速度"), ("height", "高度"), ("amount", "金额"), ("threshold", "阈值"), ("limit", "上限")]
HELDOUT_AMOUNT_NOUNS = [("depth", "深度"), ("width", "宽度"), ("tolerance", "容差"), ("discount", "折扣")]
FLAG_NOUNS = [("details", "详情"), ("images", "图片"), ("reviews", "评价"), ("prices", "价格"), ("photos", "照片"),
              ("history", "历史"), ("summary", "摘要"), ("links", "链接"), ("comments", "评论"), ("metadata", "元数据")]
HELDOUT_FLAG_NOUNS = [("captions", "字幕"), ("footnotes", "脚注"), ("thumbnails", "缩略图")]
ENUMS = [("unit", "单位", ["celsius", "fahrenheit"]), ("units", "单位", ["metric", "imperial"]),
         ("language", "语言", ["english", "chinese", "french", "german"]), ("format", "格式", ["json", "text", "csv"]),
         ("sort", "排序", ["asc", "desc"]), ("mode", "模式", ["fast", "accurate"]), ("level", "级别", ["low", "medium", "high"]),
         ("period", "周期", ["daily", "weekly", "monthly"]), ("currency", "货币", ["usd", "eur", "cny", "jpy"]),
         ("size", "尺寸", ["small", "large"])]
HELDOUT_ENUMS = [("shade", "色调", ["crimson", "azure", "amber"]), ("tier", "等级", ["bronze", "silver", "gold"]),
                 ("voice", "声音", ["alto", "tenor", "bass"])]
ARRAY_NOUNS = [("tags", "标签"), ("keywords", "关键词"), ("symbols", "代码"), ("ids", "编号"), ("names", "名字"),
               ("topics", "主题"), ("fields", "字段"), ("filters", "过滤条件")]
HELDOUT_ARRAY_NOUNS = [("flavors", "口味"), ("genres", "流派"), ("ingredients", "配料")]


def _words(pool, idx=0):
    return {w for e in pool for w in e[idx].lower().split()}


def _check_disjoint():
    tr = _words(TRAIN_TOPICS) | set(EN_VERBS) | {n.lower() for v in SUBJECT_NAMES.values() for n in v}
    tr |= _words(COUNT_NOUNS) | _words(AMOUNT_NOUNS) | _words(FLAG_NOUNS) | _words(ENUMS) | _words(ARRAY_NOUNS)
    tr |= {o for e in ENUMS for o in e[2]}
    ho = _words(HELDOUT_TOPICS) | set(HELDOUT_VERBS) | {n.lower() for v in HELDOUT_SUBJECT_NAMES.values() for n in v}
    ho |= _words(HELDOUT_COUNT_NOUNS) | _words(HELDOUT_AMOUNT_NOUNS) | _words(HELDOUT_FLAG_NOUNS) | _words(HELDOUT_ENUMS)
    ho |= _words(HELDOUT_ARRAY_NOUNS) | {o for e in HELDOUT_ENUMS for o in e[2]}
    assert not (tr & ho), tr & ho
    zh_tr = {e[1] for e in TRAIN_TOPICS}
    assert not any(h[1] in zh_tr for h in HELDOUT_TOPICS)


_check_disjoint()
HELDOUT_WORDS = sorted(({n.lower() for v in HELDOUT_SUBJECT_NAMES.values() for n in v} | _words(HELDOUT_TOPICS) | set(HELDOUT_VERBS) | _words(HELDOUT_COUNT_NOUNS) | _words(HELDOUT_AMOUNT_NOUNS)
                        | _words(HELDOUT_FLAG_NOUNS) | _words(HELDOUT_ENUMS) | _words(HELDOUT_ARRAY_NOUNS)
                        | {o for e in HELDOUT_ENUMS for o in e[2]}), key=len, reverse=True)
HELDOUT_ZH = sorted({e[1] for e in HELDOUT_TOPICS} | {e[1] for e in HELDOUT_COUNT_NOUNS} | {e[2] for e in HELDOUT_COUNT_NOUNS}
                    | {e[1] for pool in (HELDOUT_AMOUNT_NOUNS, HELDOUT_FLAG_NOUNS, HELDOUT_ENUMS, HELDOUT_ARRAY_NOUNS) for e in pool},
                    key=len, reverse=True)
# Characters for made-up Chinese words: common name characters plus every character of the Chinese
# words of both pools, so held-out words are made of characters seen in training (never the words).
ZH_FILLER_CHARS = "".join(sorted(set("星云光河林语瑞明安和嘉宇涛博雅清志远文华思睿晨晓泽浩然景鸿铭海德" + "".join(HELDOUT_ZH)
                                     + "".join(e[1] for e in TRAIN_TOPICS))))


def contains_heldout(text):
    low = text.lower()
    return any(w in low for w in HELDOUT_WORDS) or any(w in text for w in HELDOUT_ZH if len(w) >= 2)


# --- names -----------------------------------------------------------------------------
def pseudo_word(rng, lo=4, hi=10):
    while True:
        w = data._en_word(rng).lower()
        if lo <= len(w) <= hi and not contains_heldout(w):
            return w


def zh_pseudo(rng, n=2):
    while True:
        w = "".join(rng.choice(ZH_FILLER_CHARS) for _ in range(n))
        if not contains_heldout(w):
            return w


def camel(words):
    return words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])


def style_name(rng, words, verb=None):
    """A function or parameter name from words, in a random house style."""
    words = [w for ws in words for w in ws.split()]
    x = rng.random()
    if verb:
        if x < 0.45:
            return "_".join([verb] + words)
        if x < 0.8:
            return camel([verb] + words)
        if x < 0.9:
            return "_".join(words + [verb])
        return "_".join(words)
    if x < 0.6:
        return "_".join(words)
    return camel(words)


def person_name(rng, zh):
    if zh and rng.random() < 0.7:
        return rng.choice("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高") + "".join(rng.choice(ZH_FILLER_CHARS) for _ in range(rng.randint(1, 2)))
    return data._en_word(rng) + " " + data._en_word(rng)


def item_value(rng):
    x = rng.random()
    if x < 0.3:
        return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(2, 5)))
    if x < 0.7:
        return pseudo_word(rng).capitalize()
    return pseudo_word(rng, 3, 7) + " " + pseudo_word(rng, 3, 7)


# --- tool generation -------------------------------------------------------------------
class Pools:
    def __init__(self, heldout):
        self.heldout = heldout
        if heldout:
            self.topics, self.verbs, self.subj = HELDOUT_TOPICS, HELDOUT_VERBS, HELDOUT_SUBJECT_NAMES
            self.count, self.amount, self.flag = HELDOUT_COUNT_NOUNS, HELDOUT_AMOUNT_NOUNS, HELDOUT_FLAG_NOUNS
            self.enums, self.arrays = HELDOUT_ENUMS, HELDOUT_ARRAY_NOUNS
        else:
            self.topics, self.verbs, self.subj = TRAIN_TOPICS, EN_VERBS, SUBJECT_NAMES
            self.count, self.amount, self.flag = COUNT_NOUNS, AMOUNT_NOUNS, FLAG_NOUNS
            self.enums, self.arrays = ENUMS, ARRAY_NOUNS


def _pseudo_topic(rng):
    words = [pseudo_word(rng)] + ([pseudo_word(rng, 3, 7)] if rng.random() < 0.4 else [])
    return (" ".join(words), zh_pseudo(rng, rng.randint(2, 3)) + rng.choice(["指数", "数据", "信息", "记录", "状态", ""]),
            rng.choice(["place", "place", "person", "item"]))


def make_param(rng, pools, kind, zh_desc, used):
    """One extra parameter: dict with name, kind, schema and the words a question uses for it."""
    pseudo = not pools.heldout and rng.random() < 0.3
    for _ in range(20):
        if kind == "count":
            en, zh, zdesc = (pseudo_word(rng) + "s", "个" + zh_pseudo(rng), zh_pseudo(rng) + "数量") if pseudo else rng.choice(pools.count)
            name = rng.choice([en, "num_" + en, en + "_count", camel(["num", en]), "max_" + en, camel(["number", "of", en])])
            p = {"kind": kind, "en": en, "zh": zh, "schema": {"type": "integer", "description": zdesc if zh_desc else "Number of " + en}}
        elif kind == "amount":
            en, zh = (pseudo_word(rng), zh_pseudo(rng)) if pseudo else rng.choice(pools.amount)
            name = rng.choice([en, "max_" + en, en + "_value", camel(["target", en])])
            p = {"kind": kind, "en": en, "zh": zh, "schema": {"type": "number", "description": zh if zh_desc else "The " + en}}
        elif kind == "flag":
            en, zh = (pseudo_word(rng) + "s", zh_pseudo(rng)) if pseudo else rng.choice(pools.flag)
            name = rng.choice(["include_" + en, "with_" + en, camel(["include", en]), "show_" + en, camel(["show", en])])
            p = {"kind": kind, "en": en, "zh": zh,
                 "schema": {"type": "boolean", "description": "是否包含" + zh if zh_desc else "Whether to include " + en}}
        elif kind == "enum":
            if pseudo:
                en, zh, opts = pseudo_word(rng), zh_pseudo(rng), [pseudo_word(rng, 3, 8) for _ in range(rng.randint(2, 4))]
                opts = list(dict.fromkeys(opts))
            else:
                en, zh, opts = rng.choice(pools.enums)
            name = en if rng.random() < 0.7 else rng.choice([en + "_type", camel([en, "type"]), "output_" + en])
            p = {"kind": kind, "en": en, "zh": zh, "options": opts,
                 "schema": {"type": "string", "enum": list(opts), "description": zh if zh_desc else "The " + en}}
        else:  # array
            en, zh = (pseudo_word(rng) + "s", zh_pseudo(rng)) if pseudo else rng.choice(pools.arrays)
            name = rng.choice([en, en + "_list", camel([en, "list"])])
            p = {"kind": kind, "en": en, "zh": zh,
                 "schema": {"type": "array", "items": {"type": "string"}, "description": zh + "列表" if zh_desc else "List of " + en}}
        if name not in used and p["en"] not in {u for u in used.values()} and (pools.heldout or not contains_heldout(name)):
            p["name"] = name
            used[name] = p["en"]
            return p
    return None


EXTRA_COUNTS = (0, 0, 1, 1, 1, 2, 2, 3)  # extra parameters per tool: the held-out set's draw (eval_set keeps it)


def make_tool(rng, pools, zh_desc, topic=None, extra_counts=EXTRA_COUNTS):
    """A generated tool: {name, topic, zh, subject kind, params [{name, kind, ...}], language of its descriptions}.
    extra_counts: the number of extra parameters is drawn from it (training may use fewer, shorter tools)."""
    pseudo = not pools.heldout and rng.random() < 0.5
    if topic is None:
        topic = _pseudo_topic(rng) if pseudo else rng.choice(pools.topics)
    en, zh, subj = topic
    verb = rng.choice(pools.verbs) if rng.random() < 0.85 else None
    if verb and not pools.heldout and rng.random() < 0.25:
        # a made-up first word: the first token of a name is where the tool is chosen, and it must be copied, not recalled
        verb = pseudo_word(rng, 3, 7)
    name = style_name(rng, [en], verb)
    if not pools.heldout and contains_heldout(name):  # e.g. two made-up words joined into a held-out one
        return make_tool(rng, pools, zh_desc, extra_counts=extra_counts)
    used = {}
    sname = rng.choice(pools.subj[subj]) if pools.heldout or rng.random() < 0.75 else pseudo_word(rng, 3, 8)
    sdesc = rng.choice(SUBJECT_DESC[subj])[1 if zh_desc else 0]
    used[sname] = sname
    params = [{"name": sname, "kind": "subject", "subj": subj, "en": "", "zh": "", "required": True,
               "schema": {"type": "string", "description": sdesc}}]
    n_extra = rng.choice(extra_counts)
    for _ in range(n_extra):
        p = make_param(rng, pools, rng.choice(["count", "count", "amount", "flag", "enum", "enum", "array"]), zh_desc, used)
        if p is not None:
            p["required"] = rng.random() < 0.5
            params.append(p)
    where = {"place": "city", "person": "person", "item": "item"}[subj]
    zwhere = {"place": rng.choice(["指定城市", "某地", "城市"]), "person": rng.choice(["某人", "用户"]), "item": rng.choice(["指定对象", "某个物品"])}[subj]
    desc = rng.choice(["查询{w}的{t}", "获取{w}的{t}", "返回{w}当前的{t}", "{t}查询", "根据名称查询{t}"]).format(w=zwhere, t=zh) if zh_desc else \
        rng.choice(["Get the {t} for a {s}", "Look up the {t} of a given {s}", "Returns the current {t} of a {s}",
                    "{T} lookup by {s}", "Get the {t}", "Fetches {t} data for the given {s}"]).format(t=en, T=en.capitalize(), s=where)
    # Many real tool schemas describe only some parameters (kept where a Chinese question needs the
    # description to find the parameter).
    for p in params:
        if rng.random() < 0.25 and (not zh_desc or p["kind"] == "subject"):
            del p["schema"]["description"]
    return {"name": name, "topic_en": en, "topic_zh": zh, "subj": subj, "description": desc, "params": params, "zh_desc": zh_desc}


def tool_spec(tool, style):
    props = {p["name"]: p["schema"] for p in tool["params"]}
    required = [p["name"] for p in tool["params"] if p["required"]]
    fn = {"name": tool["name"], "description": tool["description"],
          "parameters": {"type": "object", "properties": props, "required": required}}
    if style == "openai":
        return {"type": "function", "function": fn}
    if style == "plain":
        return fn
    return {"name": tool["name"], "description": tool["description"],
            "params": [{"name": p["name"], "description": p["schema"].get("description", ""),
                        "type": {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "array": "list"}[p["schema"]["type"]],
                        "required": p["required"]} for p in tool["params"]]}


def render_tools(rng, tools, shares=(0.6, 0.25)):
    """The system message's tool list: OpenAI style (what our engine writes for a request's `tools`),
    a plain list of functions (ChatGLM3's prompt doc) or a dict keyed by name (composite_demo);
    shares = (OpenAI, plain), the rest composite."""
    x = rng.random()
    style = "openai" if x < shares[0] else "plain" if x < shares[0] + shares[1] else "glm3"
    if style == "glm3":
        return {t["name"]: tool_spec(t, style) for t in tools}
    return [tool_spec(t, style) for t in tools]


def tool_system(tools_json):
    return msg("system", TOOL_PROMPT + "\n" + json.dumps(tools_json, indent=4, ensure_ascii=False))


# --- questions and calls ----------------------------------------------------------------
EN_SUBJ_Q = {
    "place": ["What is the {t} in {v}?", "Can you check the {t} for {v}?", "Tell me the {t} of {v}.", "{v} {t}?",
              "I'd like to know the {t} in {v}.", "Please look up the {t} for {v}.", "How about the {t} in {v}?"],
    "person": ["What is the {t} of {v}?", "Look up the {t} for {v}.", "Can you find {v}'s {t}?", "I need the {t} of {v}.",
               "Please get the {t} for {v}."],
    "item": ["What is the {t} of {v}?", "Find the {t} for {v}.", "Check the {t} of {v}, please.", "{t} for {v}?",
             "Can you look up the {t} of {v}?"],
}
ZH_SUBJ_Q = ["{v}的{t}是什么？", "帮我查一下{v}的{t}。", "查询{v}的{t}", "请告诉我{v}的{t}。", "{v}的{t}怎么样？", "我想知道{v}的{t}。"]


def fmt_num(v):
    return str(v)


class Values:
    def __init__(self, rng, heldout, zh_cities):
        self.rng = rng
        self.heldout = heldout
        self.zh_cities = zh_cities

    def num(self, lo, hi):
        return (data.eval_number if self.heldout else data.train_number)(self.rng, lo, hi)

    def place(self, zh):
        r = self.rng
        zh_name = zh and r.random() < 0.8
        if self.heldout:
            return r.choice(self.zh_cities if zh_name else data.HELDOUT_EN)
        if r.random() < 0.6:
            return data.pseudo_city(r, zh_name)
        return r.choice(data.ZH_CITIES if zh_name else data.EN_CITIES)

    def word(self):
        w = pseudo_word(self.rng, 3, 8)
        return w


def param_value(vals, p, zh):
    r = vals.rng
    k = p["kind"]
    if k == "subject":
        return vals.place(zh) if p["subj"] == "place" else person_name(r, zh) if p["subj"] == "person" else item_value(r)
    if k == "count":
        return vals.num(1, 30)
    if k == "amount":
        return vals.num(1, 999) if r.random() < 0.5 else round(vals.num(1, 999) + vals.num(1, 9) / 10, 1)
    if k == "flag":
        return r.random() < 0.6
    if k == "enum":
        return r.choice(p["options"])
    return [vals.word() for _ in range(r.randint(1, 3))]


def phrase(p, v, zh, rng):
    k = p["kind"]
    if k == "count":
        return (rng.choice(["{v}{n}", "{v}{n}的"]) if zh else rng.choice(["for {v} {n}", "{v} {n}", "with {v} {n}"])).format(v=v, n=p["zh" if zh else "en"])
    if k == "amount":
        return (rng.choice(["{n}为{v}", "{n}{v}"]) if zh else rng.choice(["with a {n} of {v}", "{n} {v}", "{n} = {v}"])).format(v=v, n=p["zh" if zh else "en"])
    if k == "flag":
        if zh:
            return ("包含{n}" if v else "不要{n}").format(n=p["zh"])
        return (rng.choice(["include {n}", "with {n}"]) if v else rng.choice(["without {n}", "no {n}"])).format(n=p["en"])
    if k == "enum":
        return (rng.choice(["{n}用{v}", "{n}选{v}"]) if zh else rng.choice(["in {v}", "{n} {v}", "with {n} {v}"])).format(v=v, n=p["zh" if zh else "en"])
    items = ("、" if zh else ", ").join(v)
    return (rng.choice(["{n}：{v}", "{n}是{v}"]) if zh else rng.choice(["{n}: {v}", "for the {n} {v}"])).format(v=items, n=p["zh" if zh else "en"])


def py_literal(v):
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(py_literal(x) for x in v) + "]"
    return str(v)


def make_question(vals, tool, zh):
    """(question text, {param: value}) for a call of this tool."""
    r = vals.rng
    args = {}
    extras = []
    for p in tool["params"]:
        mention = p["required"] or r.random() < 0.5
        if not mention:
            continue
        v = param_value(vals, p, zh)
        args[p["name"]] = v
        if p["kind"] != "subject":
            extras.append(phrase(p, v, zh, r))
    subject = args[tool["params"][0]["name"]]
    if zh:
        q = r.choice(ZH_SUBJ_Q).format(v=subject, t=tool["topic_zh"])
        if extras:
            q = q.rstrip("。？") + "，" + "，".join(extras) + r.choice(["。", "", "？"])
    else:
        q = r.choice(EN_SUBJ_Q[tool["subj"]]).format(v=subject, t=tool["topic_en"])
        if extras:
            q = q.rstrip(".?") + ", " + ", ".join(extras) + r.choice([".", "", "?"])
    return q, args


def call_content(tool, args):
    order = [p["name"] for p in tool["params"] if p["name"] in args]
    return "```python\ntool_call(" + ", ".join(f"{k}={py_literal(args[k])}" for k in order) + ")\n```"


# --- observations and answers -----------------------------------------------------------
FIELD_KEYS = ["value", "status", "level", "count", "score", "total", "result", "updated", "note", "rank", "code", "label"]
ERRORS = ["{s} not found", "service unavailable", "rate limit exceeded", "invalid {p}", "timeout after {n} seconds",
          "no data for {s}", "permission denied"]
ZH_ERRORS = ["未找到{s}", "服务不可用", "请求过于频繁", "参数{p}无效", "{n}秒后超时", "没有{s}的数据"]


def obs_scalar(vals):
    r = vals.rng
    x = r.random()
    if x < 0.35:
        return vals.num(0, 9999)
    if x < 0.55:
        return round(vals.num(0, 999) + vals.num(1, 99) / 100, 2)
    if x < 0.7:
        return f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}"
    if x < 0.8:
        return f"20{r.randint(10, 30)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
    return pseudo_word(r, 3, 9)


def make_observation(vals, tool, args, zh):
    """(observation text, answer text, values the answer must quote)."""
    r = vals.rng
    subject = args[tool["params"][0]["name"]]
    topic = tool["topic_zh"] if zh else tool["topic_en"]
    x = r.random()
    if x < 0.12:  # a tool error, answered honestly
        pname = tool["params"][-1]["name"]
        tmpl = r.choice(ERRORS)
        err = tmpl.format(s=subject, p=pname, n=vals.num(2, 60))
        obs = json.dumps({"error": err}, ensure_ascii=False) if r.random() < 0.7 else "Error: " + err
        ans = (r.choice(["抱歉，工具返回了错误：{e}。", "查询失败，工具报错：{e}。"]) if zh else
               r.choice(["Sorry, the tool returned an error: {e}.", "The lookup failed with the error: {e}.",
                         "I couldn't get the {t}: the tool reported an error ({e})."])).format(e=err, t=topic)
        return obs, ans, [err]
    if x < 0.22:  # plain text
        v = obs_scalar(vals)
        text = (f"{subject}: {topic} {v}" if r.random() < 0.5 else f"{topic} of {subject} is {v}") if not zh else f"{subject}的{topic}为{v}"
        ans = (r.choice(["根据查询结果，{s}的{t}是{v}。", "{s}的{t}为{v}。"]) if zh else
               r.choice(["The {t} of {s} is {v}.", "According to the tool, the {t} of {s} is {v}."])).format(s=subject, t=topic, v=v)
        return text, ans, [str(v)]
    if x < 0.4:  # a list
        items = [obs_scalar(vals) for _ in range(r.randint(2, 3))]
        key = r.choice(["results", "items", "data", "list"])
        obs = json.dumps({key: items} if r.random() < 0.6 else items, ensure_ascii=False)
        joined = ("、" if zh else ", ").join(str(i) for i in items)
        ans = (r.choice(["{s}的{t}查询到{n}条结果：{j}。", "结果如下：{j}。"]) if zh else
               r.choice(["I found {n} results for the {t} of {s}: {j}.", "The results are: {j}."])).format(s=subject, t=topic, n=len(items), j=joined)
        return obs, ans, [str(i) for i in items]
    keys = r.sample(FIELD_KEYS, r.randint(1, 3))
    fields = {k: obs_scalar(vals) for k in keys}
    if x < 0.7:
        body = dict(fields)
        if r.random() < 0.5:
            body = {tool["params"][0]["name"]: subject, **body}
    else:  # nested
        body = {"status": "ok", r.choice(["data", "result", "info"]): fields}
    obs = json.dumps(body, ensure_ascii=False)
    if zh:
        parts = "，".join(f"{k}为{v}" for k, v in fields.items())
        ans = r.choice(["{s}的{t}：{p}。", "查询结果显示，{s}的{t}{p}。", "根据查询结果，{p}。"]).format(s=subject, t=topic, p=parts)
    else:
        parts = ", ".join(f"{k} is {v}" for k, v in fields.items())
        ans = r.choice(["The {t} for {s}: {p}.", "Here is the {t} of {s}: {p}.", "According to the tool, {p}."]).format(s=subject, t=topic, p=parts)
    return obs, ans, [str(v) for v in fields.values()]


# --- no fitting tool -------------------------------------------------------------------
EN_NOFIT_A = ["Sorry, none of the available tools can look up the {t}, so I can't answer that.",
              "I don't have a tool for the {t}. The tools I have here can't help with this request.",
              "None of the tools provided can do that, so I can't answer it."]
ZH_NOFIT_A = ["抱歉，现有的工具都不能查询{t}，我无法回答。", "没有可以查询{t}的工具，这个问题我帮不上忙。", "提供的工具都无法完成这个请求。"]
EN_FREE_Q = ["Write a poem about {x}.", "Tell me a joke about {x}.", "Translate this into French: {x}.", "Who invented the {x}?",
             "Book me a table at a restaurant.", "Send an email to my boss.", "What will the stock market do tomorrow?"]
ZH_FREE_Q = ["写一首关于{x}的诗。", "讲一个关于{x}的笑话。", "帮我发一封邮件。", "明天股市会涨吗？", "帮我订一张机票。", "{x}是谁发明的？"]
EN_FREE_A = ["Sorry, I can't do that with the tools I have here.", "None of the available tools can do that, so I can't help with it."]
ZH_FREE_A = ["抱歉，现有的工具做不到这件事。", "提供的工具都无法完成这个请求。"]


# --- code interpreter ------------------------------------------------------------------
FUNCS = [("sin(x)", "np.sin(x)"), ("cos(x)", "np.cos(x)"), ("x^2", "x ** 2"), ("x^3", "x ** 3"), ("exp(x)", "np.exp(x)"),
         ("sqrt(x)", "np.sqrt(x)"), ("x*sin(x)", "x * np.sin(x)"), ("1/(1+x^2)", "1 / (1 + x ** 2)"), ("2x+1", "2 * x + 1"),
         ("x^2-3x", "x ** 2 - 3 * x"), ("log(x+1)", "np.log(x + 1)"), ("abs(x)", "np.abs(x)")]


def code_program(rng, num, zh):
    """(kind, question, code, answer template or None). '{out}' in the template is the program's output."""
    kind = rng.choice(["plot", "plot", "plot", "bar", "sum", "squares", "factorial", "fib", "primes", "sort", "mean",
                       "max", "power", "gcd", "circle", "c2f", "reverse", "count"])
    if kind == "plot":
        fn, expr = rng.choice(FUNCS)
        a = num(0, 5) * (-1 if rng.random() < 0.3 and "sqrt" not in fn and "log" not in fn else 1)
        b = abs(a) + num(1, 20)
        q = rng.choice(["画出函数 y = {f} 在 {a} 到 {b} 之间的图像。", "用Python画一下 y = {f}，x从{a}到{b}。", "绘制 {f} 的图像，x 的范围是 {a} 到 {b}。"] if zh else
                       ["Plot y = {f} from {a} to {b}.", "Draw the graph of {f} for x between {a} and {b}.",
                        "Can you plot y = {f} on the interval [{a}, {b}]?", "Make a plot of {f} with x from {a} to {b}."]).format(f=fn, a=a, b=b)
        code = ("import numpy as np\nimport matplotlib.pyplot as plt\n\n"
                f"x = np.linspace({a}, {b}, 200)\ny = {expr}\nplt.plot(x, y)\nplt.title(\"y = {fn}\")\nplt.show()")
        ans = ("这是 y = {f} 在 {a} 到 {b} 之间的图像。" if zh else "Here is the plot of y = {f} for x from {a} to {b}.").format(f=fn, a=a, b=b)
        return kind, q, code, ans
    if kind == "bar":
        labels = [pseudo_word(rng, 3, 6).capitalize() for _ in range(rng.randint(2, 4))]
        values = [num(1, 99) for _ in labels]
        pairs = ("、" if zh else ", ").join(f"{l} {v}" for l, v in zip(labels, values))
        q = (rng.choice(["画一个柱状图：{p}。", "用柱状图展示这些数据：{p}"]) if zh else
             rng.choice(["Draw a bar chart of {p}.", "Make a bar chart: {p}."])).format(p=pairs)
        code = ("import matplotlib.pyplot as plt\n\n"
                f"labels = {json.dumps(labels)}\nvalues = {json.dumps(values)}\nplt.bar(labels, values)\nplt.show()")
        return kind, q, code, ("柱状图已经画好了。" if zh else "Here is the bar chart.")
    if kind == "sum":
        n = num(2, 5000)
        q = (rng.choice(["计算1到{n}的和。", "用代码求从1加到{n}的结果。"]) if zh else
             rng.choice(["Compute the sum of the integers from 1 to {n}.", "What is 1 + 2 + ... + {n}? Use code."])).format(n=n)
        return kind, q, f"total = sum(range(1, {n} + 1))\nprint(total)", ("1到{n}的和是{{out}}。" if zh else "The sum of 1 to {n} is {{out}}.").format(n=n)
    if kind == "squares":
        n = num(2, 500)
        q = (rng.choice(["用Python求1到{n}的平方和。"]) if zh else rng.choice(["Use code to find 1^2 + 2^2 + ... + {n}^2."])).format(n=n)
        return kind, q, f"total = sum(i * i for i in range(1, {n} + 1))\nprint(total)", ("平方和是{out}。" if zh else "The sum of squares is {out}.")
    if kind == "factorial":
        n = num(2, 30)
        q = (rng.choice(["用Python计算{n}的阶乘。", "求{n}!，写代码。"]) if zh else rng.choice(["Compute {n} factorial in Python.", "Write code to calculate {n}!."])).format(n=n)
        return kind, q, f"import math\n\nprint(math.factorial({n}))", ("{n}的阶乘是{{out}}。" if zh else "{n}! = {{out}}.").format(n=n)
    if kind == "fib":
        n = num(2, 60)
        q = (rng.choice(["求第{n}个斐波那契数。"]) if zh else rng.choice(["What is the {n}th Fibonacci number? Use Python.", "Compute Fibonacci number {n} with code."])).format(n=n)
        code = f"a, b = 0, 1\nfor _ in range({n}):\n    a, b = b, a + b\nprint(a)"
        return kind, q, code, ("第{n}个斐波那契数是{{out}}。" if zh else "Fibonacci number {n} is {{out}}.").format(n=n)
    if kind == "primes":
        n = num(10, 120)
        q = (rng.choice(["找出小于{n}的所有质数。", "用Python列出{n}以内的质数。"]) if zh else rng.choice(["List all primes below {n}.", "Find the prime numbers less than {n} using Python."])).format(n=n)
        code = (f"primes = [k for k in range(2, {n}) if all(k % p for p in range(2, int(k ** 0.5) + 1))]\nprint(primes)")
        return kind, q, code, ("小于{n}的质数有：{{out}}。" if zh else "The primes below {n} are {{out}}.").format(n=n)
    xs = [num(1, 999) for _ in range(rng.randint(3, 6))]
    lst = ", ".join(str(x) for x in xs)
    if kind == "sort":
        q = (rng.choice(["把这些数排序：{l}。", "用Python对[{l}]排序。"]) if zh else rng.choice(["Sort these numbers: {l}.", "Sort the list [{l}] with Python."])).format(l=lst)
        return kind, q, f"numbers = [{lst}]\nprint(sorted(numbers))", ("排序结果是{out}。" if zh else "The sorted list is {out}.")
    if kind == "mean":
        q = (rng.choice(["求这些数的平均值：{l}。"]) if zh else rng.choice(["What is the average of {l}? Use code.", "Compute the mean of [{l}] in Python."])).format(l=lst)
        return kind, q, f"numbers = [{lst}]\nprint(sum(numbers) / len(numbers))", ("平均值是{out}。" if zh else "The average is {out}.")
    if kind == "max":
        q = (rng.choice(["用代码找出{l}中的最大值。"]) if zh else rng.choice(["Find the largest of {l} with Python."])).format(l=lst)
        return kind, q, f"numbers = [{lst}]\nprint(max(numbers))", ("最大值是{out}。" if zh else "The largest number is {out}.")
    if kind == "power":
        a, b = num(2, 20), num(2, 30)
        q = (rng.choice(["用Python计算{a}的{b}次方。"]) if zh else rng.choice(["Compute {a} to the power of {b} in Python.", "What is {a}**{b}? Use code."])).format(a=a, b=b)
        return kind, q, f"print({a} ** {b})", ("{a}的{b}次方是{{out}}。" if zh else "{a}^{b} = {{out}}.").format(a=a, b=b)
    if kind == "gcd":
        a, b = num(2, 9999), num(2, 9999)
        q = (rng.choice(["求{a}和{b}的最大公约数。"]) if zh else rng.choice(["Find the greatest common divisor of {a} and {b} with Python."])).format(a=a, b=b)
        return kind, q, f"import math\n\nprint(math.gcd({a}, {b}))", ("{a}和{b}的最大公约数是{{out}}。" if zh else "The GCD of {a} and {b} is {{out}}.").format(a=a, b=b)
    if kind == "circle":
        rr = num(1, 100)
        q = (rng.choice(["计算半径为{r}的圆的面积。"]) if zh else rng.choice(["Compute the area of a circle with radius {r} in Python."])).format(r=rr)
        return kind, q, f"import math\n\nprint(math.pi * {rr} ** 2)", ("面积约为{out}。" if zh else "The area is about {out}.")
    if kind == "c2f":
        c = num(-40, 100)
        q = (rng.choice(["把{c}摄氏度换算成华氏度，用代码。"]) if zh else rng.choice(["Convert {c} degrees Celsius to Fahrenheit with code."])).format(c=c)
        return kind, q, f"c = {c}\nprint(c * 9 / 5 + 32)", ("{c}摄氏度等于{{out}}华氏度。" if zh else "{c} °C is {{out}} °F.").format(c=c)
    w = pseudo_word(rng, 4, 12)
    if kind == "reverse":
        q = (rng.choice(["用Python把字符串\"{w}\"反转。"]) if zh else rng.choice(["Reverse the string \"{w}\" in Python."])).format(w=w)
        return kind, q, f"s = \"{w}\"\nprint(s[::-1])", ("反转后是{out}。" if zh else "The reversed string is {out}.")
    q = (rng.choice(["用代码数一数\"{w}\"里有几个字母。"]) if zh else rng.choice(["Count the letters in \"{w}\" with Python."])).format(w=w)
    return "count", q, f"s = \"{w}\"\nprint(len(s))", ("\"{w}\"有{{out}}个字母。" if zh else "\"{w}\" has {{out}} letters.").format(w=w)


def code_pool(seed, n, heldout=False):
    """n code requests (kind, question, code, answer template, zh) from a seeded generator."""
    rng = random.Random(seed)
    num = (lambda lo, hi: data.eval_number(rng, lo, hi)) if heldout else (lambda lo, hi: data.train_number(rng, lo, hi))
    out = []
    for i in range(n):
        zh = rng.random() < 0.45
        kind, q, code, ans = code_program(rng, num, zh)
        out.append({"kind": kind, "question": q, "code": code, "answer": ans, "zh": zh})
    return out


def code_observation(result):
    """What the agent loop sends back for a run (src/agent/interpreter/observation.ts formatCodeObservation)."""
    text = result["text"]
    if result.get("error"):
        text += ("" if text == "" or text.endswith("\n") else "\n") + result["error"]
    text = text.rstrip()
    if len(text) > 1024:
        text = text[:1024] + " [TRUNCATED]"
    parts = ([text] if text else []) + ["[Image]"] * result["images"]
    return "\n".join(parts)


# --- conversations ---------------------------------------------------------------------
class ToolGen:
    def __init__(self, seed, code_items, code_results, heldout=False, zh_cities=None, tool_counts=(1, 2, 2, 3, 3, 4),
                 extra_counts=EXTRA_COUNTS, shapes=(0.6, 0.25), turns=(1, 2, 2, 3, 3), choose_counts=(3, 4, 5)):
        self.rng = random.Random(seed)
        self.tool_counts = tool_counts
        self.extra_counts = extra_counts
        self.shapes = shapes
        self.turns = turns
        self.choose_counts = choose_counts
        self.pools = Pools(heldout)
        self.vals = Values(self.rng, heldout, zh_cities or data.HELDOUT_ZH_CANDIDATES)
        self.code_items = code_items
        self.code_results = code_results
        self.heldout = heldout
        self.echo_gen = data.Gen(seed + 1, echo_max_parts=8, pseudo_cities=0.7, echo_quoted=0.5)
        # The three tools of the first demo model (weather, random number, calculator: data.py), whose
        # argument patterns (a range "between 15 and 604", an arithmetic expression) the generated
        # tools lack; the tests and the README's examples declare them.
        self.classic_gen = data.Gen(seed + 2, pseudo_cities=0.7)

    def toolset(self, zh, n=None, extra_counts=None):
        r = self.rng
        n = n or r.choice(self.tool_counts)
        tools, topics = [], set()
        while len(tools) < n:
            zh_desc = (r.random() < 0.75) == zh
            t = make_tool(r, self.pools, zh_desc, extra_counts=extra_counts or self.extra_counts)
            if t["topic_en"] in topics or t["name"] in {x["name"] for x in tools}:
                continue
            topics.add(t["topic_en"])
            tools.append(t)
        return tools

    def call_turn(self, tools, target, zh):
        # A Chinese question can be matched to a tool only through a Chinese description.
        if zh and not target["zh_desc"]:
            zh_tools = [t for t in tools if t["zh_desc"]]
            if zh_tools:
                target = self.rng.choice(zh_tools)
            else:
                zh = False
        q, args = make_question(self.vals, target, zh)
        obs, ans, values = make_observation(self.vals, target, args, zh)
        msgs = [msg("user", q), msg("assistant", call_content(target, args), target["name"]), msg("observation", obs), msg("assistant", ans)]
        return msgs, {"tool": target["name"], "args": args, "values": values}

    def nofit_question(self, tools, zh):
        r = self.rng
        used = {t["topic_en"] for t in tools}
        if r.random() < 0.7:
            while True:
                other = make_tool(r, self.pools, zh)
                if other["topic_en"] not in used:
                    break
            q, _ = make_question(self.vals, other, zh)
            topic = other["topic_zh"] if zh else other["topic_en"]
            return q, r.choice(ZH_NOFIT_A if zh else EN_NOFIT_A).format(t=topic)
        x = r.choice(data.ZH_THINGS if zh else data.EN_THINGS)
        return r.choice(ZH_FREE_Q if zh else EN_FREE_Q).format(x=x), r.choice(ZH_FREE_A if zh else EN_FREE_A)

    def tool_conversation(self, choose=False):
        """choose: a choosing drill in real form: 3-5 tools with only their subject parameter, in the
        compact plain shape, and one call per question (no no-fit questions): what it practises is
        picking the tool whose name or description shares words with the question."""
        r = self.rng
        zh = r.random() < 0.45
        tools = self.toolset(zh, r.choice(self.choose_counts), (0,)) if choose else self.toolset(zh)
        order = list(tools)
        r.shuffle(order)
        out = [tool_system(render_tools(r, order, (0.25, 0.75) if choose else self.shapes))]
        # Later questions reuse the tool list already read: more calls per token of system prompt.
        turns = r.choice(self.turns)
        for i in range(turns):
            if i > 0 and r.random() < 0.3:
                zh = not zh
            if not choose and r.random() < 0.12:
                q, a = self.nofit_question(tools, zh)
                out += [msg("user", q), msg("assistant", a)]
            else:
                out += self.call_turn(tools, r.choice(tools), zh)[0]
        return out

    def code_conversation(self):
        r = self.rng
        for _ in range(100):
            item = r.choice(self.code_items)
            res = self.code_results.get(item["code"])
            if res is not None and res["ok"]:
                break
        x = r.random()
        pre = [] if x < 0.3 else [msg("system", DEFAULT_SYSTEM)] if x < 0.45 else \
            [msg("system", CI_PROMPT_ZH)] if x < 0.85 else [msg("system", CI_PROMPT_EN)]
        obs = code_observation(res)
        ans = item["answer"]
        if "{out}" in ans:
            ans = ans.replace("{out}", obs if len(obs) <= 120 else obs[:0] + "the printed result")
        return pre + [msg("user", item["question"]), msg("assistant", "```python\n" + item["code"] + "\n```", "interpreter"),
                      msg("observation", obs), msg("assistant", ans)]

    def conversation(self, weights):
        r = self.rng
        kind = r.choices(["tool", "code", "nofit", "greet", "echo", "choose", "classic"][:len(weights)], weights)[0]
        if kind == "classic":
            return self.classic_gen.conversation((1, 0, 0, 0, 0, 0, 0))
        if kind in ("tool", "choose"):
            return self.tool_conversation(kind == "choose")
        if kind == "code":
            return self.code_conversation()
        zh = r.random() < 0.45
        if kind == "nofit":
            tools = self.toolset(zh)
            q, a = self.nofit_question(tools, zh)
            return [tool_system(render_tools(r, tools)), msg("user", q), msg("assistant", a)]
        if kind == "greet":
            pre = [] if r.random() < 0.6 else [msg("system", DEFAULT_SYSTEM)]
            return pre + [msg("user", r.choice(data.ZH_GREET_Q if zh else data.EN_GREET_Q)),
                          msg("assistant", r.choice(ZH_INTRO if zh else EN_INTRO))]
        return self.echo_gen.echo(zh)


EN_INTRO = ["Hello! I am a tiny demonstration model with the ChatGLM3 architecture, trained by the chatglm.ts project on synthetic "
            "dialogues. I can call the tools you declare and write small Python programs for the code interpreter."]
ZH_INTRO = ["你好！我是一个采用 ChatGLM3 架构的小型演示模型，由 chatglm.ts 项目用合成对话训练而成。我可以调用你提供的工具，也可以为代码解释器编写简单的 Python 程序。"]


def eval_set(seed, zh_cities, code_items, n_tool=120, n_nofit=40):
    """Held-out items: tool calls with unseen tools (half Chinese), their observations, no-fit requests
    and code requests (code_items come from code_pool(heldout=True))."""
    g = ToolGen(seed, [], {}, heldout=True, zh_cities=zh_cities)
    r = g.rng
    items = []
    for i in range(n_tool):
        zh = i % 2 == 1
        tools = g.toolset(zh, r.choice([1, 2, 3, 4]))
        target = r.choice(tools)
        if zh and not target["zh_desc"]:
            # A Chinese question can only be matched to a tool through a Chinese description.
            target = make_tool(r, g.pools, True, (target["topic_en"], target["topic_zh"], target["subj"]))
            tools[tools.index(next(t for t in tools if t["topic_en"] == target["topic_en"]))] = target
        spec = [tool_spec(t, "openai") for t in tools]
        sysm = tool_system(spec)
        episode, exp = g.call_turn(tools, target, zh)
        items.append({"kind": "tool", "zh": zh, "tools": spec, "messages": [sysm, episode[0]], "expected": exp,
                      "observation_messages": [sysm] + episode[:3], "reference_answer": episode[3]["content"]})
    for i in range(n_nofit):
        zh = i % 2 == 1
        tools = g.toolset(zh)
        q, a = g.nofit_question(tools, zh)
        spec = [tool_spec(t, "openai") for t in tools]
        items.append({"kind": "nofit", "zh": zh, "tools": spec, "messages": [tool_system(spec), msg("user", q)], "reference_answer": a})
    for it in code_items:
        items.append({"kind": "code", "zh": it["zh"], "plot": it["kind"] in ("plot", "bar"), "messages": [msg("user", it["question"])],
                      "expected": {"code": it["code"]}})
    return items
