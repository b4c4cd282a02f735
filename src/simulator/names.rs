//! The raw material of generated data: people, groups, phrases and file
//! names, mostly Chinese, with other scripts mixed in so encoding bugs show.

/// (display name, e-mail local part, WeChat id stem)
pub const PEOPLE: &[(&str, &str, &str)] = &[
    ("李伟", "li.wei", "liwei"),
    ("张敏", "zhang.min", "zhangmin"),
    ("王芳", "wang.fang", "wangfang"),
    ("刘洋", "liu.yang", "liuyang"),
    ("陈静", "chen.jing", "chenjing"),
    ("杨磊", "yang.lei", "yanglei"),
    ("赵婷", "zhao.ting", "zhaoting"),
    ("黄强", "huang.qiang", "huangq"),
    ("周杰", "zhou.jie", "zhoujie"),
    ("吴霞", "wu.xia", "wuxia"),
    ("徐明", "xu.ming", "xuming"),
    ("孫麗華", "sun.lihua", "sunlh"),
    ("Nguyễn Văn An", "an.nguyen", "annguyen"),
    ("José Álvarez", "jose.alvarez", "jalvarez"),
    ("Søren Kjær", "soren.kjaer", "skjaer"),
    ("田中 花子", "hanako.tanaka", "tanakah"),
    ("김민준", "minjun.kim", "mjkim"),
    ("Αλέξης Παππάς", "alexis.pappas", "apappas"),
    ("Иван Петров", "ivan.petrov", "ipetrov"),
    ("Li Wei", "li.wei.hk", "liwei_hk"),
    ("Zhang Min", "min.zhang", "zm_hk"),
    ("Chloé Dubois", "chloe.dubois", "cdubois"),
    ("محمد علي", "mohammed.ali", "mali"),
    ("欧阳 娜娜", "ouyang.nana", "oynn"),
];

/// External contacts: clients and suppliers outside the firm.
pub const EXTERNALS: &[&str] = &[
    "客户-陈总",
    "供应商 王经理",
    "Mr. Wong (HK)",
    "張太太",
    "Ana María 🌸",
    "老李",
    "王小明 Xiaoming",
    "🐼 熊猫",
    "Dr. Müller",
    "",
];

pub const GROUP_TITLES: &[&str] = &[
    "华东销售群",
    "华南客户服务",
    "Compliance ✔ Desk",
    "東京チーム",
    "Équipe Paris 🇫🇷",
    "固收交易台",
    "",
    "项目「星火」讨论组",
    "APAC Rates \"Flow\"",
];

pub const PHRASES: &[&str] = &[
    "明天上午十点开会，请准时参加。",
    "报价单已经发到你邮箱了 📎",
    "收到，谢谢！",
    "Can we move the call to 3pm?",
    "这个客户的合同还需要法务审核。",
    "价格能不能再优惠一点？",
    "OK 👍",
    "周五之前给我答复。",
    "請確認一下訂單數量。",
    "今日の会議資料を送ります。",
    "Merci, à demain !",
    "Итак, договорились.",
    "🎉🎉🎉",
    "好的，我马上处理。",
    "Please keep this confidential.",
    "晚上一起吃饭吗？",
    "债券收益率今天又涨了 5 个基点。",
    "客户要求提前交割，怎么办？",
    "Noted — will revert by EOD.",
    "这笔交易的对手方是谁？",
    "감사합니다!",
    "Ціна узгоджена.",
    "별로예요 😅",
    "最终版本以附件为准。",
];

/// (name, content type) of media sent in a chat.
pub const MEDIA: &[(&str, &str)] = &[
    ("照片.jpg", "image/jpeg"),
    ("截图 2026-11-21.png", "image/png"),
    ("语音消息.amr", "audio/amr"),
    ("现场视频.mp4", "video/mp4"),
    ("👍表情.gif", "image/gif"),
];

/// (name, content type) of documents shared on their own.
pub const FILES: &[(&str, &str)] = &[
    ("报价单.pdf", "application/pdf"),
    (
        "合同草案 v2.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    (
        "Q3 売上.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("Résumé – Chloé.pdf", "application/pdf"),
    ("会议纪要（最终）.txt", "text/plain"),
    ("archive.zip", "application/zip"),
];

/// (country code, leading digits, remaining digit count) of generated mobiles.
pub const MOBILE_PLANS: &[(&str, &str, usize)] = &[
    ("86", "13", 9),
    ("86", "18", 9),
    ("852", "9", 7),
    ("65", "8", 7),
    ("44", "7", 9),
    ("1", "415", 7),
    ("81", "90", 8),
];
