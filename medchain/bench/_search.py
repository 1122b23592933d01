"""Encrypted-search benchmark: build an index of records by keywords through the
`search.index` contract in large blocks, then time keyword searches end to end (token,
the node's label walk, the client's decryption) for small and large result sets.
Figures go to docs/BENCHMARKS.md; this is never a test."""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from medchain.app import (
    BlockContext,
    IndexArgs,
    Ledger,
    RegisterArgs,
    Role,
    apply_checked_tx,
    check_tx_static,
    sse_lookup,
)
from medchain.client import IndexUpdate, KeywordState, open_results, plan_entries
from medchain.crypto import AccountKeys, SearchToken, epoch_keys, keyword_id, search_key, signed_tx
from medchain.types import Allocation, Genesis, GenesisValidator, Tx

Progress = Callable[[str, int, int], None]
CHAIN_ID = "medchain-bench"

RESOURCE_TYPES = (
    ("Observation", 50),
    ("Condition", 20),
    ("MedicationRequest", 15),
    ("Procedure", 10),
    ("DiagnosticReport", 5),
)
"""Each record's first keyword, with its share of records in percent."""

_TERMS = """
hypertension; type 2 diabetes mellitus; hyperlipidemia; asthma; copd; heart failure;
atrial fibrillation; coronary artery disease; chronic kidney disease; obesity; depression;
anxiety; hypothyroidism; osteoarthritis; rheumatoid arthritis; osteoporosis; migraine;
epilepsy; parkinson disease; alzheimer disease; stroke; anemia; gout; psoriasis; eczema;
pneumonia; influenza; covid-19; urinary tract infection; sepsis; cellulitis; bronchitis;
sinusitis; otitis media; gastroesophageal reflux; peptic ulcer; crohn disease;
ulcerative colitis; irritable bowel syndrome; cirrhosis; hepatitis c; pancreatitis;
gallstones; appendicitis; diverticulitis; breast cancer; lung cancer; prostate cancer;
colorectal cancer; melanoma; lymphoma; leukemia; sleep apnea; insomnia; schizophrenia;
bipolar disorder; adhd; autism; glaucoma; cataract; macular degeneration; hearing loss;
pregnancy; preeclampsia; gestational diabetes; endometriosis; polycystic ovary syndrome;
benign prostatic hyperplasia; kidney stones; deep vein thrombosis; pulmonary embolism;
peripheral artery disease; aortic stenosis; cardiomyopathy; fracture of hip; low back pain;
sciatica; carpal tunnel syndrome; fibromyalgia; lupus; multiple sclerosis; celiac disease;
vitamin d deficiency; iron deficiency; dehydration; hypokalemia; hyponatremia;
heart rate; blood pressure panel; systolic blood pressure; diastolic blood pressure;
body temperature; respiratory rate; oxygen saturation; body weight; body height;
body mass index; hemoglobin a1c; glucose; total cholesterol; ldl cholesterol;
hdl cholesterol; triglycerides; creatinine; egfr; sodium; potassium; hemoglobin;
white blood cell count; platelet count; tsh; alt; ast; bilirubin; albumin; inr; troponin;
bnp; crp; urinalysis; vitamin d; ferritin; psa; lipid panel; complete blood count;
basic metabolic panel; comprehensive metabolic panel; 8867-4; 85354-9; 8480-6; 8462-4;
8310-5; 9279-1; 59408-5; 29463-7; 8302-2; 39156-5; 4548-4; 2345-7; 2093-3; 13457-7;
2085-9; 2571-8; 2160-0; 33914-3; 2951-2; 2823-3; 718-7; 6690-2; 777-3; 3016-3;
38070003; 44054006; 195967001; 13645005; 84114007; 49436004; 53741008; 709044004;
35489007; 197480006; 40930008; 396275006; 69896004; 64859006; 37796009; 230690007;
metformin; lisinopril; amlodipine; atorvastatin; simvastatin; losartan; metoprolol;
hydrochlorothiazide; furosemide; omeprazole; levothyroxine; insulin glargine; insulin lispro;
warfarin; apixaban; rivaroxaban; clopidogrel; aspirin; albuterol; fluticasone; montelukast;
prednisone; amoxicillin; azithromycin; ciprofloxacin; doxycycline; sertraline; fluoxetine;
escitalopram; bupropion; trazodone; gabapentin; ibuprofen; acetaminophen; tramadol;
oxycodone; allopurinol; methotrexate; adalimumab; empagliflozin; semaglutide; sitagliptin;
colonoscopy; mammography; echocardiogram; electrocardiogram; chest x-ray; ct head;
mri brain; spirometry; cardiac catheterization; knee replacement; hip replacement;
cataract surgery; appendectomy; cholecystectomy; cesarean section; dialysis; chemotherapy;
radiotherapy; vaccination; influenza vaccine; physical therapy; wound care; biopsy;
blood transfusion; endoscopy; ultrasound abdomen; bone density scan; sleep study;
vital-signs; laboratory; imaging; social-history; problem-list-item; encounter-diagnosis;
active; resolved; confirmed; provisional; final; preliminary; amended; outpatient;
inpatient; emergency; home health; telehealth; allergy to penicillin; allergy to peanuts;
smoker; former smoker; never smoker; alcohol use; family history of diabetes;
family history of heart disease
"""
VOCABULARY = tuple(t.strip() for t in _TERMS.replace("\n", " ").split(";") if t.strip())
"""Clinical terms and codes (LOINC, SNOMED CT) as a record's keywords would be; drawn with
Zipf-Mandelbrot frequencies (the k-th term weighs 1/(k + 20)): the commonest is in about
one record in eight, the rarest in about one in a hundred."""
_ZIPF_OFFSET = 20


@dataclass(frozen=True)
class QueryTiming:
    size: str
    """small, medium, large or largest result set."""
    keyword: str
    results: int
    """Record ids returned."""
    entries: int
    """Encrypted entries the node walked and the client decrypted."""
    epochs: int
    queries: int
    p50_ms: float
    p95_ms: float
    mean_ms: float


@dataclass(frozen=True)
class SearchBenchResult:
    records: int
    keywords_per_record: int
    entries: int
    epochs: int
    block_size: int
    vocabulary: int
    client_entries_us_per_record: float
    """Client: derive keys, labels and encrypted values for one record's keywords."""
    apply_us_per_record: float
    """Chain: decode, verify, check and apply one record's `search.index` transaction."""
    queries: tuple[QueryTiming, ...]


def _no_progress(_: str, __: int, ___: int) -> None:
    pass


def _signed(keys: AccountKeys, nonce: int, method: str, args: object) -> Tx:
    return signed_tx(keys, CHAIN_ID, nonce, method, args)


RARE_CODES = tuple(
    f"{letter}{group:02d}.{detail}"
    for letter in "ABCDEFGHIJKLMNOPQRSTVWXYZ"
    for group in range(0, 80, 4)
    for detail in range(0, 8, 2)
)
"""A long tail of ICD-10-shaped diagnosis codes (2,000), two per record, uniformly: the
keywords that match about ten records in ten thousand."""
_CODES_PER_RECORD = 2


def _record_keywords(rng: random.Random, count: int) -> list[str]:
    kinds = [kind for kind, _ in RESOURCE_TYPES]
    words = [rng.choices(kinds, [share for _, share in RESOURCE_TYPES])[0].lower()]
    words += [code.lower() for code in rng.sample(RARE_CODES, _CODES_PER_RECORD)]
    weights = [1 / (k + _ZIPF_OFFSET) for k in range(len(VOCABULARY))]
    while len(words) < count:
        word = rng.choices(VOCABULARY, weights)[0]
        if word not in words:
            words.append(word)
    return words


class _BenchChain:
    """A ledger with one funded owner, applying blocks of checked transactions."""

    def __init__(self) -> None:
        self.owner, self.validator = AccountKeys.generate(), AccountKeys.generate()
        genesis = Genesis(
            CHAIN_ID,
            0,
            allocations=(Allocation(self.owner.address, 10**12),),
            validators=(GenesisValidator(self.validator.public_key, "bench"),),
        )
        self.ledger = Ledger(genesis)
        self.params = genesis.params
        self.height = 0
        role = RegisterArgs(Role.PATIENT, "", b"\x09" * 32)  # an index's owner: any account
        self.run_block([_signed(self.owner, 0, "registry.register", role)])

    def run_block(self, txs: list[Tx]) -> float:
        """Apply `txs` as the next block; the seconds it took."""
        self.height += 1
        context = BlockContext(
            CHAIN_ID, self.height, self.height, self.validator.address, self.params
        )
        state = self.ledger.state
        began = time.perf_counter()
        state.begin_block()
        for tx in txs:
            receipt = apply_checked_tx(
                state, context, tx, check_tx_static(tx, CHAIN_ID, self.params)
            )
            assert receipt.ok, receipt.message
        state.end_block()
        return time.perf_counter() - began


@dataclass
class _Index:
    """What indexing left: each keyword's state, the records truly under it, and time
    spent on the client and on the chain."""

    states: dict[bytes, KeywordState] = dataclasses.field(default_factory=dict)
    truth: dict[str, list[bytes]] = dataclasses.field(default_factory=dict)
    entries: int = 0
    client_s: float = 0.0
    apply_s: float = 0.0


def _build_index(
    chain: _BenchChain,
    rng: random.Random,
    records: int,
    keywords_per_record: int,
    block_size: int,
    epochs: int,
    progress: Progress,
) -> _Index:
    key = search_key(chain.owner)
    index = _Index()
    per_epoch = max(1, records // epochs)
    pending: list[Tx] = []
    for i in range(records):
        if i and i % per_epoch == 0:  # a session ends: every keyword was searched
            index.states = {
                k: dataclasses.replace(s, revealed=True) for k, s in index.states.items()
            }
        record_id = rng.randbytes(16)
        words = _record_keywords(rng, keywords_per_record)
        for word in words:
            index.truth.setdefault(word, []).append(record_id)
        began = time.perf_counter()
        entries, after = plan_entries(key, index.states, [IndexUpdate(record_id, tuple(words))])
        index.client_s += time.perf_counter() - began
        index.states.update(after)
        index.entries += len(entries)
        pending.append(_signed(chain.owner, i + 1, "search.index", IndexArgs(tuple(entries))))
        if len(pending) == block_size or i == records - 1:
            index.apply_s += chain.run_block(pending)
            pending = []
        if i % 100 == 99 or i == records - 1:
            progress("index records", i + 1, records)
    return index


def _time_search(
    chain: _BenchChain, index: _Index, size: str, word: str, queries: int
) -> QueryTiming:
    """Search `word` `queries` times end to end: token, label walk, decryption."""
    key = search_key(chain.owner)
    state = index.states[keyword_id(key, word)]
    runs, results, walked = [], 0, 0
    for _ in range(queries):
        began = time.perf_counter()
        keys = [epoch_keys(key, word, e) for e in range(state.epoch + 1)]
        token = SearchToken(tuple(k.label_key for k in keys))
        found = sse_lookup(chain.ledger.state, chain.owner.address, token)
        ids = open_results([k.value_key for k in keys], found)
        runs.append((time.perf_counter() - began) * 1000)
        results, walked = len(ids), sum(len(v) for v in found)
    assert sorted(ids) == sorted(index.truth[word]), f"wrong results for {word!r}"
    runs.sort()
    return QueryTiming(
        size=size,
        keyword=word,
        results=results,
        entries=walked,
        epochs=state.epoch + 1,
        queries=queries,
        p50_ms=runs[len(runs) // 2],
        p95_ms=runs[min(len(runs) - 1, int(len(runs) * 0.95))],
        mean_ms=statistics.fmean(runs),
    )


def run_search_bench(
    records: int = 10_000,
    keywords_per_record: int = 10,
    block_size: int = 1_000,
    epochs: int = 10,
    queries: int = 50,
    seed: int = 2014,
    progress: Progress = _no_progress,
) -> SearchBenchResult:
    """Index `records` records, searching every keyword after each of `epochs` equal
    sessions (so tokens carry that many label keys), then time searches."""
    rng = random.Random(seed)
    chain = _BenchChain()
    index = _build_index(chain, rng, records, keywords_per_record, block_size, epochs, progress)
    counts = sorted(((len(ids), w) for w, ids in index.truth.items()), reverse=True)
    chosen = _pick(counts)
    timings = []
    for n, (size, word) in enumerate(chosen):
        timings.append(_time_search(chain, index, size, word, queries))
        progress("search", n + 1, len(chosen))
    return SearchBenchResult(
        records=records,
        keywords_per_record=keywords_per_record,
        entries=index.entries,
        epochs=epochs,
        block_size=block_size,
        vocabulary=len(VOCABULARY) + len(RESOURCE_TYPES) + len(RARE_CODES),
        client_entries_us_per_record=index.client_s / records * 1e6,
        apply_us_per_record=index.apply_s / records * 1e6,
        queries=tuple(timings),
    )


def _pick(counts: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """Two keywords per result-size class, nearest to 10, 100 and 1,000 results, and the
    single most frequent one."""
    chosen = [("largest", counts[0][1])]
    for size, target in (("small", 10), ("medium", 100), ("large", 1_000)):
        nearest = sorted(counts[1:], key=lambda c: (abs(c[0] - target), c[1]))[:2]
        chosen += [(size, word) for _, word in sorted(nearest, reverse=True)]
    order = {"small": 0, "medium": 1, "large": 2, "largest": 3}
    return sorted(chosen, key=lambda c: order[c[0]])
