"""Seeded synthetic ChatGLM3-format dialogues for the tiny demo model.

A conversation is a list of messages {"role", "metadata", "content"} exactly as ChatGLM3's
build_chat_input consumes them.  The same module builds the held-out evaluation prompts: cities
in HELDOUT_* and numbers in the held-out set never appear in any training conversation, so the
model can only get them right by copying from the question.

Development tool only (run with Debian's /usr/bin/python3); nothing at install/run time needs it.
"""
import json
import random

TOOL_PROMPT = "Answer the following questions as best as you can. You have access to the following tools:"
DEFAULT_SYSTEM = ("You are ChatGLM3, a large language model trained by Zhipu.AI. "
                  "Follow the user's instructions carefully. Respond using markdown.")
CI_SYSTEMS = [
    "You are a helpful assistant with a Python code interpreter. Write code to answer the user.",
    "你是一位智能AI助手，你叫ChatGLM，你连接着一台电脑，但请注意不能联网。在使用Python解决任务时，你可以运行代码并得到结果。",
]

# --- cities -----------------------------------------------------------------------------
EN_CITIES = """Paris London Berlin Madrid Rome Lisbon Vienna Prague Warsaw Budapest Dublin Oslo
Stockholm Helsinki Copenhagen Amsterdam Brussels Zurich Geneva Munich Hamburg Frankfurt Milan Naples
Venice Florence Barcelona Seville Valencia Porto Athens Istanbul Ankara Cairo Nairobi Lagos Accra Dakar
Casablanca Tunis Johannesburg Durban Tokyo Osaka Kyoto Nagoya Sapporo Seoul Busan Bangkok Hanoi Manila
Jakarta Singapore Delhi Mumbai Chennai Kolkata Dhaka Karachi Lahore Tehran Baghdad Riyadh Dubai Doha
Moscow Kazan Kyiv Minsk Riga Vilnius Tallinn Sydney Melbourne Brisbane Perth Adelaide Auckland
Wellington Toronto Montreal Vancouver Calgary Ottawa Chicago Boston Seattle Denver Dallas Houston Austin
Phoenix Miami Atlanta Detroit Portland Philadelphia Baltimore Nashville Memphis Orlando Tampa Pittsburgh
Cleveland Cincinnati Minneapolis Milwaukee Havana Lima Bogota Quito Santiago Caracas Montevideo Asuncion
Brasilia Salvador Recife Manaus Cordoba Rosario Mendoza Glasgow Edinburgh Manchester Liverpool Leeds
Bristol Cardiff Belfast Lyon Marseille Nice Toulouse Bordeaux Lille Nantes Strasbourg Cologne Dresden
Leipzig Stuttgart Bremen Hanover Turin Genoa Bologna Palermo Bilbao Malaga Granada Krakow Gdansk Poznan
Brno Bratislava Ljubljana Zagreb Belgrade Sofia Bucharest Odessa Tbilisi Yerevan Baku Almaty Tashkent
Kabul Kathmandu Colombo Yangon Phnom_Penh Kuala_Lumpur Taipei Macau Ulaanbaatar Vladivostok Novosibirsk
Anchorage Honolulu Reno Boise Tucson Omaha Tulsa Wichita Raleigh Richmond Buffalo Albany Hartford
Providence Savannah Charleston Louisville Indianapolis Columbus Sacramento Oakland Fresno Halifax Quebec
Winnipeg Regina Edmonton Victoria Monterrey Guadalajara Tijuana Cancun Oaxaca Panama Kingston Nassau
San_Juan Reykjavik Bergen Gothenburg Malmo Aarhus Tampere Antwerp Ghent Rotterdam Utrecht Eindhoven
Basel Bern Lausanne Salzburg Graz Innsbruck Split Dubrovnik Sarajevo Skopje Tirana Podgorica Valletta
Nicosia Beirut Amman Jerusalem Muscat Kuwait Manama Addis_Ababa Khartoum Kampala Kigali Lusaka Harare
Maputo Luanda Windhoek Gaborone Abuja Kano Bamako Niamey Freetown Monrovia Abidjan Lome Cotonou Douala
Kinshasa Brazzaville Mombasa Zanzibar Antananarivo Port_Louis Perth Darwin Hobart Canberra Cairns
Christchurch Dunedin Suva Apia Noumea Hilo Juneau Fairbanks Spokane Tacoma Eugene Salem Modesto Stockton
Fargo Bismarck Duluth Madison Dayton Akron Toledo Erie Rochester Syracuse Newark Trenton Dover Norfolk
Mobile Jackson Shreveport Lubbock Amarillo El_Paso Laredo Waco Plano Irvine Anaheim Pasadena Berkeley
Palo_Alto Boulder Aspen Provo Ogden Billings Missoula Casper Cheyenne Lincoln Topeka Springfield Peoria
Lexington Knoxville Chattanooga Asheville Durham Greenville Augusta Macon Tallahassee Gainesville Naples
""".split()
EN_CITIES = [c.replace("_", " ") for c in dict.fromkeys(EN_CITIES)]

ZH_CITIES = """北京 上海 广州 深圳 天津 重庆 成都 武汉 杭州 南京 西安 长沙 郑州 济南 青岛 大连 沈阳 长春
哈尔滨 昆明 贵阳 南宁 海口 三亚 拉萨 西宁 兰州 银川 太原 石家庄 合肥 南昌 福州 厦门 宁波 无锡 苏州 温州
珠海 佛山 东莞 洛阳 开封 桂林 丽江 大理 香港 澳门 台北 高雄 台中 烟台 威海 潍坊 淄博 临沂 徐州 扬州
镇江 常州 南通 泰州 盐城 嘉兴 湖州 绍兴 金华 台州 丽水 舟山 芜湖 安庆 黄山 九江 赣州 景德镇 泉州 漳州
莆田 汕头 湛江 惠州 中山 江门 肇庆 柳州 北海 遵义 曲靖 玉溪 西双版纳 乌鲁木齐 喀什 呼和浩特 包头
鄂尔多斯 大同 运城 保定 唐山 秦皇岛 邯郸 廊坊 承德 张家口 吉林 延吉 齐齐哈尔 大庆 牡丹江 鞍山 丹东 锦州
宜昌 襄阳 荆州 岳阳 常德 株洲 湘潭 衡阳 张家界 绵阳 乐山 宜宾 泸州 南充 德阳 自贡 攀枝花 天水 敦煌
酒泉 格尔木 日喀则 林芝 伊犁 吐鲁番 哈密 宝鸡 咸阳 延安 汉中 榆林 南阳 新乡 安阳 商丘 信阳 东京 大阪
首尔 釜山 曼谷 新加坡 伦敦 巴黎 柏林 罗马 马德里 莫斯科 纽约 洛杉矶 旧金山 芝加哥 悉尼 墨尔本 多伦多
温哥华 迪拜 开罗 孟买 雅加达 河内 马尼拉 吉隆坡 维也纳 布拉格 雅典 里斯本 都柏林 奥斯陆 赫尔辛基
""".split()
ZH_CITIES = list(dict.fromkeys(ZH_CITIES))

# Held-out cities: never in training.  English ones are whole words the tokenizer never saw as one
# piece; Chinese ones are built from characters that do occur in training (checked in prepare.py),
# so every token of a held-out city has a trained embedding but the sequence itself is new.
HELDOUT_EN = """Marrakesh Lucerne Nuremberg Bordesholm Kaunas Tartu Plovdiv Cluj Timisoara Lviv Kharkiv
Gdynia Szczecin Ostrava Linz Verona Padua Trieste Cagliari Alicante Zaragoza Coimbra Braga Faro Nantucket
Savona Limerick Galway Cork Aberdeen Dundee Inverness Norwich Exeter Oxford Cambridge Brighton Plymouth
Portsmouth Sheffield Newcastle Nottingham Leicester Coventry Derby Hull Swansea Bath York Chester Durango
Sedona Flagstaff Santa_Fe Tahoe Monterey Kelowna Saskatoon Moncton Sudbury Kobe Nara Fukuoka Sendai
Hiroshima Daegu Incheon Chiang_Mai Pattaya Da_Nang Cebu Davao Medan Surabaya Bandung Penang Malacca
Goa Pune Jaipur Agra Varanasi Mysore Kochi Lucknow Hyderabad Bangalore""".split()
HELDOUT_EN = [c.replace("_", " ") for c in HELDOUT_EN]
HELDOUT_ZH_CANDIDATES = """宁德 安顺 海东 新余 金昌 吉安 宜春 抚州 上饶 南平 三明 龙岩 梅州 河源 清远 韶关 云浮 阳江
茂名 钦州 贵港 玉林 百色 河池 来宾 安康 商洛 铜川 渭南 白银 武威 张掖 平凉 庆阳 定西 海西 昌吉 阿勒泰 塔城
石嘴山 吴忠 固原 中卫 乌海 赤峰 通辽 兴安 朔州 忻州 晋中 晋城 长治 阳泉 临汾 沧州 衡水 邢台 德州 聊城 滨州
东营 济宁 泰安 日照 枣庄 菏泽 宿迁 淮安 连云港 宿州 淮北 蚌埠 阜阳 淮南 滁州 六安 马鞍山 宣城 铜陵 池州
衢州 三门峡 平顶山 许昌 周口 焦作 濮阳 十堰 孝感 黄冈 咸宁 随州 恩施 黄石 荆门 益阳 郴州 永州 怀化 娄底
邵阳 广元 遂宁 内江 眉山 广安 达州 雅安 巴中 资阳 西昌 六盘水 铜仁 兴义 保山 昭通 普洱 临沧 文山 景洪
昌都 山南 海北 玉树 松原 白山 白城 四平 通化 营口 阜新 辽阳 铁岭 朝阳 盘锦 抚顺 本溪 伊春 黑河 绥化
""".split()
for _c in HELDOUT_EN:
    assert _c not in EN_CITIES, _c
for _c in HELDOUT_ZH_CANDIDATES:
    assert _c not in ZH_CITIES, _c


# Made-up city names.  With only the real-city lists above the model memorised them and snapped an
# unseen city to a similar known one (Jaipur -> Juneau); when most training cities are invented on
# the fly, no name repeats often enough to be memorised and the only way to get the argument right is
# to copy it from the question, which is what the held-out evaluation measures.
EN_ONSETS = ("b c d f g h j k l m n p r s t v w y z br ch cl cr dr fl fr gl gr kh kr ph pl pr "
             "sh sk sl sp st th tr v z").split() + [""] * 6
EN_VOWELS = "a e i o u a e i o u ai au ea ee ia io oa ou oo ei ua y".split()
EN_CODAS = "n r l s m t k nd rg ck st x ng sh th rd ll ss nt rn ld mb".split() + [""] * 30
EN_PREFIXES = ["New", "San", "Port", "Saint", "Fort", "Lake", "Mount", "El", "Santa", "North", "West"]
EN_SUFFIXES = ["City", "Bay", "Falls", "Springs", "Beach", "Harbor"]
# Characters of Chinese place names (the real lists plus common ones), to compose made-up names.
ZH_PLACE_CHARS = sorted(set("".join(ZH_CITIES) + "".join(HELDOUT_ZH_CANDIDATES) +
                            "州山阳江河安宁城平南北东西海湖口门水林泉峰岭溪川源丰华新兴庆德昌化龙凤"))
_HELD_LOWER = [c.lower() for c in HELDOUT_EN]


def _en_word(rng):
    parts = []
    for _ in range(rng.choice((1, 2, 2, 2, 3, 3))):
        parts.append(rng.choice(EN_ONSETS) + rng.choice(EN_VOWELS) + rng.choice(EN_CODAS))
    w = "".join(parts)
    return w[:1].upper() + w[1:]


def pseudo_city(rng, zh):
    """A made-up city name that contains no held-out city (so held-out names stay unseen)."""
    while True:
        if zh:
            name = "".join(rng.choice(ZH_PLACE_CHARS) for _ in range(rng.choice((2, 2, 2, 3))))
            if not any(h in name for h in HELDOUT_ZH_CANDIDATES):
                return name
            continue
        x = rng.random()
        if x < 0.08:
            name = rng.choice(EN_PREFIXES) + " " + _en_word(rng)
        elif x < 0.12:
            name = _en_word(rng) + " " + rng.choice(EN_SUFFIXES)
        elif x < 0.17:  # letter soup: pure character-level copying
            letters = "abcdefghijklmnopqrstuvwxyz"
            name = "".join(rng.choice(letters) for _ in range(rng.randint(3, 9))).capitalize()
        else:
            name = _en_word(rng)
        if 3 <= len(name) <= 14 and not any(h in name.lower() for h in _HELD_LOWER):
            return name


def heldout_number(n):
    """Numbers with this property are reserved for evaluation; training never uses them."""
    return (n * 2654435761) % 11 == 3


def train_number(rng, lo, hi):
    for _ in range(100):
        n = rng.randint(lo, hi)
        if not heldout_number(n):
            return n
    return n


def eval_number(rng, lo, hi):
    """A held-out number; tiny ranges (e.g. 2..25 for factorials) may hold none, then any."""
    for _ in range(100):
        n = rng.randint(lo, hi)
        if heldout_number(n):
            return n
    return n


# --- tools ------------------------------------------------------------------------------
WEATHER_TOOL = {
    "name": "get_current_weather",
    "description": "Get the current weather in a given city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}
RANDOM_TOOL = {
    "name": "random_number",
    "description": "Generate a random integer between low and high (inclusive)",
    "parameters": {
        "type": "object",
        "properties": {
            "low": {"type": "integer"},
            "high": {"type": "integer"},
        },
        "required": ["low", "high"],
    },
}
CALC_TOOL = {
    "name": "calculator",
    "description": "Evaluate an arithmetic expression",
    "parameters": {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
}
TOOLS = {"get_current_weather": WEATHER_TOOL, "random_number": RANDOM_TOOL, "calculator": CALC_TOOL}


def glm3_style(tool):
    """The composite_demo registry layout: {name, description, params: [...]}."""
    params = []
    for pname, p in tool["parameters"]["properties"].items():
        params.append({"name": pname, "type": "str" if p["type"] == "string" else "int", "required": True})
    return {"name": tool["name"], "description": tool["description"], "params": params}


def render_tools(rng, names):
    """Tools as they appear in the system message: a plain list (ChatGLM3 prompt doc), an
    OpenAI-style list (openai_api_demo) or a dict keyed by name (composite_demo)."""
    style = rng.random()
    if style < 0.6:
        return [TOOLS[n] for n in names]
    if style < 0.85:
        return [{"type": "function", "function": TOOLS[n]} for n in names]
    return {n: glm3_style(TOOLS[n]) for n in names}


def tool_system(tools):
    return {"role": "system", "metadata": "",
            "content": TOOL_PROMPT + "\n" + json.dumps(tools, indent=4, ensure_ascii=False)}


def tool_list(rng, needed):
    others = [n for n in TOOLS if n != needed]
    rng.shuffle(others)
    names = [needed] + others[: rng.randint(0, len(others))]
    rng.shuffle(names)
    return names


def msg(role, content, metadata=""):
    return {"role": role, "metadata": metadata, "content": content}


def call_content(args):
    return "```python\ntool_call(" + ", ".join(f"{k}={v}" for k, v in args) + ")\n```"


def pyrepr(s):
    return '"' + s + '"'


# --- phrasing pools ---------------------------------------------------------------------
EN_WEATHER_Q = [
    "What's the weather like in {c}?", "What is the weather in {c} today?", "How is the weather in {c}?",
    "Tell me the current weather in {c}.", "Is it raining in {c} right now?", "weather in {c}",
    "Can you check the weather in {c} for me?", "How hot is it in {c} now?", "What's the temperature in {c}?",
    "I'm going to {c} tomorrow. What's the weather there now?", "Could you look up the weather for {c}?",
    "Please get the current weather of {c}.", "{c} weather?", "Do I need an umbrella in {c} today?",
]
ZH_WEATHER_Q = [
    "{c}今天天气怎么样？", "{c}现在的天气如何？", "帮我查一下{c}的天气。", "{c}的气温是多少？", "{c}下雨了吗？",
    "请告诉我{c}现在的天气。", "我明天去{c}，那里天气怎么样？", "查询{c}天气", "{c}现在冷不冷？", "{c}天气",
    "你能帮我看看{c}的天气吗？", "今天{c}热吗？",
]
EN_DESC = ["sunny", "cloudy", "partly cloudy", "light rain", "heavy rain", "snow", "fog", "windy",
           "thunderstorm", "clear", "overcast", "drizzle"]
ZH_DESC = ["晴", "多云", "阴", "小雨", "大雨", "雷阵雨", "小雪", "大雪", "雾", "大风", "晴转多云", "阵雨"]
EN_WEATHER_A = [
    "The current weather in {c} is {d}, with a temperature of {t}°C and humidity of {h}%.",
    "It is {d} in {c} right now. The temperature is {t}°C and the humidity is {h}%.",
    "In {c} it is currently {t}°C and {d} (humidity {h}%).",
    "Right now {c} has {d} weather, {t}°C, humidity {h}%.",
]
ZH_WEATHER_A = [
    "{c}现在的天气是{d}，气温{t}°C，湿度{h}%。", "根据查询结果，{c}当前{d}，气温{t}°C，湿度{h}%。",
    "{c}目前天气{d}，温度为{t}°C，相对湿度{h}%。",
]

EN_RANDOM_Q = [
    "Give me a random number between {a} and {b}.", "Pick a random number from {a} to {b}.",
    "Generate a random integer between {a} and {b}.", "I need a random number in the range {a} to {b}.",
    "Roll a random number between {a} and {b}, please.", "random number from {a} to {b}",
    "Can you choose a number between {a} and {b} at random?",
]
ZH_RANDOM_Q = [
    "生成一个{a}到{b}之间的随机数。", "帮我随机选一个{a}到{b}之间的整数。", "给我一个{a}到{b}的随机数",
    "请在{a}和{b}之间随机生成一个数字。", "随机数，范围{a}到{b}",
]
EN_RANDOM_A = ["Your random number is {r}.", "I generated a random number between {a} and {b}: {r}.",
               "The random number between {a} and {b} is {r}.", "Here you go: {r}."]
ZH_RANDOM_A = ["生成的随机数是{r}。", "我在{a}到{b}之间生成了一个随机数，结果为{r}。", "随机数为{r}。"]

EN_CALC_Q = [
    "What is {e}?", "Calculate {e}.", "Compute {e} for me.", "How much is {e}?", "{e} = ?",
    "Please work out {e}.", "Can you calculate {e}?", "what's {e}",
]
ZH_CALC_Q = ["{e}等于多少？", "帮我算一下{e}。", "计算{e}", "请计算{e}的结果。", "{e}是多少？"]
EN_CALC_A = ["{e} = {r}.", "The result of {e} is {r}.", "{e} equals {r}.", "The answer is {r}."]
ZH_CALC_A = ["{e} = {r}。", "{e}的结果是{r}。", "计算结果为{r}。"]

EN_GREET_Q = ["Hello", "Hi!", "Hello!", "Hi there", "Hey", "Good morning!", "Good evening", "hello",
              "Who are you?", "What are you?", "Introduce yourself.", "What can you do?", "Tell me about yourself.",
              "Hi, who am I talking to?", "What is your name?", "Hello, what can you help me with?"]
ZH_GREET_Q = ["你好", "你好！", "您好", "嗨", "早上好", "晚上好", "你是谁？", "介绍一下你自己。", "你能做什么？",
              "你叫什么名字？", "你好，你能帮我做什么？", "请做个自我介绍"]
EN_INTRO = [
    "Hello! I am a tiny demonstration model with the ChatGLM3 architecture, trained by the chatglm.ts project on synthetic dialogues. I can check the weather, pick random numbers and do arithmetic with tools, and write small Python programs. I only know what I was trained on.",
    "Hi! I am a tiny demonstration model, trained on synthetic ChatGLM3 dialogues. I can call a weather tool, a random number tool and a calculator, and write Python code for the code interpreter. I know little else.",
    "Hello! I am a tiny demonstration model of the ChatGLM3 architecture. Ask me about the weather in a city, a random number, some arithmetic, or a small Python program.",
]
ZH_INTRO = [
    "你好！我是一个很小的演示模型，采用 ChatGLM3 架构，由 chatglm.ts 项目用合成对话训练而成。我可以调用工具查天气、生成随机数、做算术，也可以写简单的 Python 代码。我只知道训练时学过的内容。",
    "你好！我是一个小型演示模型，用合成的 ChatGLM3 对话训练。我会调用天气、随机数和计算器工具，也能为代码解释器写 Python 代码，其他的我不太懂。",
]

EN_REFUSE_Q = [
    "Write a poem about the {x}.", "Tell me a joke about {x}.", "Who invented the {x}?", "Translate '{x}' into French.",
    "Book a flight to {c}.", "What is the capital of {c}?", "Recommend a good restaurant in {c}.",
    "Explain the history of the {x}.", "What do you think about the {x}?", "Order a pizza for me.",
    "Summarize the news today.", "What's the stock price of Apple?", "Send an email to my boss.",
    "Write an essay about the {x}.", "Play some music.", "Set an alarm for 7 am.", "How do I fix my car?",
    "Who will win the next election?", "Describe the {x} in detail.", "Sing me a song about {c}.",
]
EN_THINGS = ["sea", "moon", "internet", "telephone", "printing press", "bicycle", "computer", "mountains",
             "river", "ocean", "forest", "sun", "train", "airplane", "camera", "piano", "guitar", "city",
             "winter", "summer", "universe", "history of art", "stock market", "weather", "cat", "dog"]
ZH_REFUSE_Q = [
    "写一首关于{x}的诗。", "讲一个关于{x}的笑话。", "{x}是谁发明的？", "帮我订一张去{c}的机票。", "{c}有什么好吃的？",
    "介绍一下{x}的历史。", "帮我写一篇关于{x}的文章。", "今天有什么新闻？", "帮我发一封邮件。", "推荐一部电影。",
    "明天股市会涨吗？", "帮我订个外卖。", "唱一首歌吧。", "你觉得{x}怎么样？",
]
ZH_THINGS = ["大海", "月亮", "互联网", "电话", "印刷术", "自行车", "电脑", "高山", "长江", "森林", "太阳", "火车",
             "飞机", "相机", "钢琴", "冬天", "夏天", "宇宙", "猫", "狗"]
EN_REFUSE_A = [
    "Sorry, I can't do that. I am a tiny demonstration model: I can only greet you, call the weather, random number and calculator tools, and write small Python programs.",
    "I'm sorry, but I can't help with that. I am only a tiny demonstration model and know just a few things: weather, random numbers, arithmetic and small Python programs.",
]
ZH_REFUSE_A = [
    "抱歉，我做不到。我只是一个很小的演示模型，只会打招呼、调用天气、随机数和计算器工具，以及写简单的 Python 代码。",
    "对不起，这个我帮不上忙。我只是一个演示模型，只懂天气、随机数、算术和简单的 Python 代码。",
]
EN_NOTOOL_A = ["Sorry, I can't do that: no {t} tool is available in this conversation.",
               "I'm sorry, I don't have a {t} tool here, so I can't answer that."]
ZH_NOTOOL_A = ["抱歉，当前对话中没有{t}工具，我无法回答。", "对不起，这里没有可用的{t}工具。"]
TOOL_WORD = {"get_current_weather": ("weather", "天气"), "random_number": ("random number", "随机数"),
             "calculator": ("calculator", "计算器")}

# --- code interpreter -------------------------------------------------------------------
FUNCS = [("sin(x)", "np.sin(x)"), ("cos(x)", "np.cos(x)"), ("x^2", "x ** 2"), ("x^3", "x ** 3"),
         ("exp(x)", "np.exp(x)"), ("log(x)", "np.log(x)"), ("sqrt(x)", "np.sqrt(x)"), ("tan(x)", "np.tan(x)"),
         ("x*sin(x)", "x * np.sin(x)"), ("1/(1+x^2)", "1 / (1 + x ** 2)")]


def code_task(rng, num, zh):
    """Returns (question, code, observation, answer) for one code request."""
    kind = rng.randrange(7)
    if kind == 0:
        fn, expr = rng.choice(FUNCS)
        a = num(0, 5)
        b = a + num(1, 20)
        q = rng.choice(["画出函数 {f} 在 {a} 到 {b} 之间的图像。", "用Python画一下{f}，x从{a}到{b}。"] if zh else
                       ["Plot {f} from {a} to {b}.", "Draw the graph of {f} for x between {a} and {b}.",
                        "Can you plot y = {f} on the interval [{a}, {b}]?"]).format(f=fn, a=a, b=b)
        code = ("import numpy as np\nimport matplotlib.pyplot as plt\n\n"
                f"x = np.linspace({a}, {b}, 200)\ny = {expr}\nplt.plot(x, y)\nplt.title(\"y = {fn}\")\nplt.show()")
        return q, code, "[Image]", ("图像已经画好了。" if zh else "Here is the plot of y = " + fn + ".")
    if kind == 1:
        n = num(2, 2000)
        q = rng.choice(["计算1到{n}的和。", "用代码求从1加到{n}的结果。"] if zh else
                       ["Compute the sum of the integers from 1 to {n}.", "Write Python to add up 1 to {n}.",
                        "What is the sum 1 + 2 + ... + {n}? Use code."]).format(n=n)
        code = f"total = sum(range(1, {n} + 1))\nprint(total)"
        r = n * (n + 1) // 2
        return q, code, str(r), (f"1到{n}的和是{r}。" if zh else f"The sum of 1 to {n} is {r}.")
    if kind == 2:
        n = num(2, 300)
        q = rng.choice(["计算{n}的平方和，从1到{n}。", "用Python求1到{n}的平方和。"] if zh else
                       ["Compute the sum of squares from 1 to {n} with Python.",
                        "Use code to find 1^2 + 2^2 + ... + {n}^2."]).format(n=n)
        code = f"total = sum(i * i for i in range(1, {n} + 1))\nprint(total)"
        r = n * (n + 1) * (2 * n + 1) // 6
        return q, code, str(r), (f"平方和是{r}。" if zh else f"The sum of squares is {r}.")
    if kind == 3:
        n = num(2, 25)
        q = rng.choice(["用Python计算{n}的阶乘。", "求{n}!，写代码。"] if zh else
                       ["Compute {n} factorial in Python.", "Write code to calculate {n}!."]).format(n=n)
        code = f"import math\n\nprint(math.factorial({n}))"
        import math
        r = math.factorial(n)
        return q, code, str(r), (f"{n}的阶乘是{r}。" if zh else f"{n}! = {r}.")
    if kind == 4:
        n = num(2, 40)
        q = rng.choice(["写代码输出前{n}个斐波那契数。", "用Python打印斐波那契数列的前{n}项。"] if zh else
                       ["Print the first {n} Fibonacci numbers.", "Write a Python program for the first {n} Fibonacci numbers."]).format(n=n)
        code = f"a, b = 0, 1\nfor _ in range({n}):\n    print(a)\n    a, b = b, a + b"
        return q, code, None, None
    if kind == 5:
        n = num(10, 500)
        q = rng.choice(["找出小于{n}的所有质数。", "用Python列出{n}以内的质数。"] if zh else
                       ["List all primes below {n}.", "Find the prime numbers less than {n} using Python."]).format(n=n)
        code = (f"primes = []\nfor k in range(2, {n}):\n    if all(k % p for p in primes if p * p <= k):\n"
                "        primes.append(k)\nprint(primes)")
        return q, code, None, None
    xs = [num(1, 99) for _ in range(rng.randint(3, 6))]
    lst = ", ".join(str(x) for x in xs)
    if rng.random() < 0.5:
        q = rng.choice(["把这些数排序：{l}。", "用Python对[{l}]排序。"] if zh else
                       ["Sort these numbers: {l}.", "Sort the list [{l}] with Python."]).format(l=lst)
        code = f"numbers = [{lst}]\nprint(sorted(numbers))"
        r = "[" + ", ".join(str(x) for x in sorted(xs)) + "]"
        return q, code, r, (f"排序结果是{r}。" if zh else f"The sorted list is {r}.")
    q = rng.choice(["求这些数的平均值：{l}。"] if zh else
                   ["What is the average of {l}? Use code.", "Compute the mean of [{l}] in Python."]).format(l=lst)
    code = f"numbers = [{lst}]\nprint(sum(numbers) / len(numbers))"
    r = repr(sum(xs) / len(xs))
    return q, code, r, (f"平均值是{r}。" if zh else f"The average is {r}.")


# --- conversation builders --------------------------------------------------------------
class Gen:
    def __init__(self, seed, heldout=False, zh_cities=None, echo_max_parts=4, pseudo_cities=0.0, echo_quoted=0.0):
        self.rng = random.Random(seed)
        self.echo_max_parts = echo_max_parts
        self.echo_quoted = echo_quoted
        self.pseudo_cities = 0.0 if heldout else pseudo_cities
        self.used_cities = []  # cities of the current conversation (prepare.py keeps them out of the tokenizer text)
        self.heldout = heldout
        if heldout:
            self.en_cities = HELDOUT_EN
            self.zh_cities = zh_cities or HELDOUT_ZH_CANDIDATES
        else:
            self.en_cities = EN_CITIES
            self.zh_cities = ZH_CITIES

    def num(self, lo, hi):
        return (eval_number if self.heldout else train_number)(self.rng, lo, hi)

    def city(self, zh):
        r = self.rng
        zh_name = zh and r.random() < 0.8
        # (no extra draw when pseudo_cities is 0, so the default data stays what it was)
        if self.pseudo_cities > 0 and r.random() < self.pseudo_cities:
            c = pseudo_city(r, zh_name)
        else:
            c = r.choice(self.zh_cities if zh_name else self.en_cities)
        self.used_cities.append(c)
        return c

    def weather(self, zh):
        r = self.rng
        c = self.city(zh)
        q = r.choice(ZH_WEATHER_Q if zh else EN_WEATHER_Q).format(c=c)
        t = r.randint(-15, 40)
        h = r.randint(10, 99)
        d = r.choice(ZH_DESC if zh else EN_DESC)
        obs = {"location": c, "temperature": t, "unit": "celsius", "description": d, "humidity": h}
        ans = r.choice(ZH_WEATHER_A if zh else EN_WEATHER_A).format(c=c, d=d, t=t, h=h)
        return q, [("location", pyrepr(c))], obs, ans, {"location": c}, [str(t)]

    def random_number(self, zh):
        r = self.rng
        a = self.num(0, 1000)
        b = a + self.num(1, 10000)
        q = r.choice(ZH_RANDOM_Q if zh else EN_RANDOM_Q).format(a=a, b=b)
        v = r.randint(a, b)
        ans = r.choice(ZH_RANDOM_A if zh else EN_RANDOM_A).format(a=a, b=b, r=v)
        return q, [("low", str(a)), ("high", str(b))], {"result": v}, ans, {"low": a, "high": b}, [str(v)]

    def calculator(self, zh):
        r = self.rng
        op = r.choice(["+", "-", "*", "/"])
        x = self.num(1, 9999 if op in "+-" else 999)
        y = self.num(1, 9999 if op in "+-" else 999)
        if r.random() < 0.2:
            z = self.num(1, 99)
            op2 = r.choice(["+", "-", "*"])
            e = f"({x} {op} {y}) {op2} {z}" if r.random() < 0.5 else f"{x} {op} {y} {op2} {z}"
        else:
            e = f"{x} {op} {y}"
        v = eval(e)
        if isinstance(v, float):
            v = round(v, 4)
            if v == int(v):
                v = int(v)
        q = r.choice(ZH_CALC_Q if zh else EN_CALC_Q).format(e=e)
        ans = r.choice(ZH_CALC_A if zh else EN_CALC_A).format(e=e, r=v)
        return q, [("expression", pyrepr(e))], {"result": v}, ans, {"expression": e}, [str(v)]

    def tool_episode(self, name, zh):
        """Returns (messages after system, expected) for one tool question."""
        q, args, obs, ans, expected_args, values = getattr(self, {"get_current_weather": "weather",
                                                                  "random_number": "random_number",
                                                                  "calculator": "calculator"}[name])(zh)
        msgs = [msg("user", q), msg("assistant", call_content(args), name),
                msg("observation", json.dumps(obs, ensure_ascii=False)), msg("assistant", ans)]
        return msgs, {"tool": name, "args": expected_args, "values": values}

    def greeting(self, zh):
        r = self.rng
        return [msg("user", r.choice(ZH_GREET_Q if zh else EN_GREET_Q)), msg("assistant", r.choice(ZH_INTRO if zh else EN_INTRO))]

    def refusal(self, zh):
        r = self.rng
        if zh:
            q = r.choice(ZH_REFUSE_Q).format(x=r.choice(ZH_THINGS), c=self.city(True))
            return [msg("user", q), msg("assistant", r.choice(ZH_REFUSE_A))]
        q = r.choice(EN_REFUSE_Q).format(x=r.choice(EN_THINGS), c=self.city(False))
        return [msg("user", q), msg("assistant", r.choice(EN_REFUSE_A))]

    def code(self, zh, with_result):
        q, code, obs, ans = code_task(self.rng, self.num, zh)
        msgs = [msg("user", q), msg("assistant", "```python\n" + code + "\n```", "interpreter")]
        if with_result and obs is not None:
            msgs += [msg("observation", obs), msg("assistant", ans)]
        return msgs

    def echo(self, zh):
        """Repeat-after-me: pure copying practice for cities and numbers (no system prompt, short)."""
        r = self.rng
        parts = []
        for _ in range(r.randint(1, self.echo_max_parts)):
            x = r.random()
            if x < 0.5:
                parts.append(self.city(zh))
            elif x < 0.8:
                parts.append(str(self.num(0, 99999)))
            else:
                parts.append(f"{self.num(1, 999)} {r.choice('+-*/')} {self.num(1, 999)}")
        text = ("，" if zh else ", ").join(parts)
        if self.echo_quoted and r.random() < self.echo_quoted:
            # Each part in double quotes, as a tool call's argument is: after a quote a name is
            # tokenized without the word-start marker ("▁In ver ness" in the question becomes
            # "In ver ness" in tool_call(location="Inverness")), and the model has to learn that
            # pairing for every first piece, which plain repeating never practises.
            q = r.choice(["把这些加上引号：{t}", "用引号重复：{t}"] if zh else
                         ["Quote this: {t}", "Repeat in quotes: {t}", "Put each in quotes: {t}"]).format(t=text)
            return [msg("user", q), msg("assistant", ", ".join(json.dumps(p, ensure_ascii=False) for p in parts))]
        q = r.choice(["跟我说：{t}", "请重复：{t}", "复述这句话：{t}"] if zh else
                     ["Repeat after me: {t}", "Say: {t}", "Please repeat exactly: {t}", "Echo this: {t}"]).format(t=text)
        return [msg("user", q), msg("assistant", text)]

    def conversation(self, weights=(50, 10, 9, 20, 3, 8, 0)):
        r = self.rng
        self.used_cities = []
        zh = r.random() < 0.4
        kind = r.choices(["tool", "greet", "refuse", "code", "notool", "multi", "echo"], weights)[0]
        if kind == "echo":
            return self.echo(zh)
        if kind == "tool":
            name = r.choice(list(TOOLS))
            sysm = tool_system(render_tools(r, tool_list(r, name)))
            episode, _ = self.tool_episode(name, zh)
            if r.random() < 0.15:  # sometimes the conversation stops after the call
                episode = episode[:2]
            return [sysm] + episode
        if kind == "greet":
            pre = [] if r.random() < 0.6 else [msg("system", DEFAULT_SYSTEM)]
            if r.random() < 0.3:
                pre = [tool_system(render_tools(r, tool_list(r, r.choice(list(TOOLS)))))]
            return pre + self.greeting(zh)
        if kind == "refuse":
            pre = [] if r.random() < 0.5 else [msg("system", DEFAULT_SYSTEM)]
            if r.random() < 0.4:
                pre = [tool_system(render_tools(r, tool_list(r, r.choice(list(TOOLS)))))]
            return pre + self.refusal(zh)
        if kind == "code":
            x = r.random()
            pre = [] if x < 0.4 else [msg("system", DEFAULT_SYSTEM)] if x < 0.6 else [msg("system", r.choice(CI_SYSTEMS))]
            return pre + self.code(zh, r.random() < 0.5)
        if kind == "notool":
            name = r.choice(list(TOOLS))
            others = [n for n in TOOLS if n != name]
            pre = [] if r.random() < 0.5 else [tool_system(render_tools(r, r.sample(others, r.randint(1, 2))))]
            q = self.tool_episode(name, zh)[0][0]
            word = TOOL_WORD[name][1 if zh else 0]
            return pre + [q, msg("assistant", r.choice(ZH_NOTOOL_A if zh else EN_NOTOOL_A).format(t=word))]
        # multi-turn: a greeting or a first tool question, then another tool question
        names = [r.choice(list(TOOLS)), r.choice(list(TOOLS))]
        uniq = list(dict.fromkeys(names))
        r.shuffle(uniq)
        sysm = tool_system(render_tools(r, uniq))
        out = [sysm]
        if r.random() < 0.4:
            out += self.greeting(zh)
        else:
            out += self.tool_episode(names[0], zh)[0]
        out += self.tool_episode(names[1], zh)[0]
        return out


def eval_set(seed, zh_cities, n_tool=60, n_code=30):
    """Held-out prompts: (kind, messages-before-the-reply, expected)."""
    g = Gen(seed, heldout=True, zh_cities=zh_cities)
    items = []
    for i in range(n_tool):
        zh = i % 3 == 2
        name = list(TOOLS)[i % 3]
        tools = render_tools(g.rng, tool_list(g.rng, name))
        sysm = tool_system(tools)
        episode, exp = g.tool_episode(name, zh)
        items.append({"kind": "tool", "tools": tools, "messages": [sysm, episode[0]], "expected": exp,
                      "observation_messages": [sysm] + episode[:3], "reference_answer": episode[3]["content"]})
    for i in range(n_code):
        zh = i % 3 == 2
        q, code, _, _ = code_task(g.rng, g.num, zh)
        x = g.rng.random()
        pre = [] if x < 0.5 else [msg("system", DEFAULT_SYSTEM)]
        items.append({"kind": "code", "messages": pre + [msg("user", q)], "expected": {"code": code}})
    return items
