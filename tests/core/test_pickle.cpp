// The pickle subset: values pickled by Python 3 with protocols 2-5 (tests/fixtures/gen_torch.py)
// and hand-written opcode sequences for the error paths.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/base/error.h"
#include "core/io/pickle.h"
#include "core/test_paths.h"

using namespace modeldiff::core;
using Kind = PickleValue::Kind;
using modeldiff::test::test_fixture;

namespace {

// The bytes of a string literal, embedded NULs included.
template <std::size_t N>
std::string B(const char (&s)[N]) {
  return std::string(s, N - 1);
}

PickleValue parse(const std::string& bytes, const std::string& name = "test.pkl") {
  return parse_pickle(name, reinterpret_cast<const std::byte*>(bytes.data()), bytes.size());
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value under string key `key` of a dict; fails the test when absent.
PickleValue get(const PickleValue& dict, const std::string& key) {
  for (std::size_t i = 0; i < dict.pair_count(); ++i) {
    if (dict.pair_key(i).is(Kind::kString) && dict.pair_key(i).as_string() == key) {
      return dict.pair_value(i);
    }
  }
  ADD_FAILURE() << "no key " << key;
  return dict;
}

// Expects an InputError whose message contains every one of `parts`.
void expect_error(const std::string& bytes, std::initializer_list<const char*> parts) {
  try {
    parse(bytes);
    ADD_FAILURE() << "no InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("test.pkl"), std::string::npos) << msg;
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << p << " in " << msg;
  }
}

}  // namespace

TEST(Pickle, PythonValuesOfProtocols2To5) {
  for (int protocol = 2; protocol <= 5; ++protocol) {
    SCOPED_TRACE("protocol " + std::to_string(protocol));
    const PickleValue v =
        parse(file_bytes(test_fixture("pickle/value_p" + std::to_string(protocol) + ".pkl")));
    ASSERT_TRUE(v.is(Kind::kDict));
    EXPECT_EQ(get(v, "int").as_int(), 7);
    EXPECT_EQ(get(v, "neg").as_int(), -5);
    EXPECT_EQ(get(v, "i16").as_int(), 40000);
    EXPECT_EQ(get(v, "i32").as_int(), -2147483648LL);
    EXPECT_EQ(get(v, "i64").as_int(), 1LL << 40);
    const PickleValue big = get(v, "big");  // 2**70: little-endian two's complement bytes
    ASSERT_TRUE(big.is(Kind::kBigInt));
    EXPECT_EQ(big.as_string(), B("\0\0\0\0\0\0\0\0\x40"));
    EXPECT_EQ(get(v, "float").as_float(), 1.5);
    EXPECT_TRUE(get(v, "none").is(Kind::kNone));
    const PickleValue flags = get(v, "flags");
    ASSERT_TRUE(flags.is(Kind::kList));
    ASSERT_EQ(flags.item_count(), 2u);
    EXPECT_TRUE(flags.item(0).as_bool());
    EXPECT_FALSE(flags.item(1).as_bool());
    EXPECT_EQ(get(v, "text").as_string(), "h\xc3\xa9llo");
    EXPECT_EQ(get(v, "long_text").as_string(), std::string(300, 'x'));
    const PickleValue bytes = get(v, "bytes");
    if (protocol == 2) {  // protocol 2 has no bytes opcode: _codecs.encode(str, 'latin1')
      EXPECT_TRUE(bytes.is_call_to("_codecs", "encode"));
    } else {
      EXPECT_EQ(bytes.as_string(), B("\0\1\2"));
    }
    const PickleValue tuple = get(v, "tuple");
    ASSERT_TRUE(tuple.is(Kind::kTuple));
    ASSERT_EQ(tuple.item_count(), 4u);
    EXPECT_EQ(tuple.item(3).as_int(), 4);
    EXPECT_EQ(get(v, "pair").item(1).as_string(), "b");
    // The int key 3.
    bool found_int_key = false;
    for (std::size_t i = 0; i < v.pair_count(); ++i) {
      if (v.pair_key(i).is(Kind::kInt) && v.pair_key(i).as_int() == 3) {
        found_int_key = true;
        EXPECT_EQ(v.pair_value(i).as_string(), "int key");
      }
    }
    EXPECT_TRUE(found_int_key);
    // Values shared through the memo are the same node.
    const PickleValue shared = get(v, "shared");
    EXPECT_EQ(shared.item(0).node_id(), shared.item(1).node_id());
    EXPECT_EQ(shared.item(0).item_count(), 2u);
    if (protocol >= 4) {
      EXPECT_TRUE(get(v, "set").is(Kind::kSet));
      EXPECT_EQ(get(v, "set").item(0).as_int(), 5);
      EXPECT_EQ(get(v, "frozen").item(0).as_int(), 6);
    } else {
      EXPECT_TRUE(get(v, "set").is_call_to("builtins", "set"));
    }
    // OrderedDict: a call to collections.OrderedDict with its items added by SETITEMS.
    const PickleValue od = get(v, "od");
    ASSERT_TRUE(od.is_call_to("collections", "OrderedDict"));
    ASSERT_EQ(od.pair_count(), 1u);
    EXPECT_EQ(od.pair_key(0).as_string(), "k");
    EXPECT_EQ(od.pair_value(0).as_int(), 1);
    if (protocol == 5) {
      EXPECT_EQ(get(v, "bytearray").as_string(), "ab");
    }
  }
}

TEST(Pickle, RecursiveListIsRepresentedWithoutLooping) {
  const PickleValue v = parse(file_bytes(test_fixture("pickle/recursive.pkl")));
  ASSERT_TRUE(v.is(Kind::kList));
  ASSERT_EQ(v.item_count(), 1u);
  EXPECT_EQ(v.item(0).node_id(), v.node_id());
}

TEST(Pickle, GlobalsReduceBuildAndPersistentIds) {
  // PROTO 2; GLOBAL mod.fn; (1,) ; REDUCE; {} 'a' 2 SETITEM; BUILD; then a persistent id tuple.
  const PickleValue v =
      parse(B("\x80\x02"
              "cmod.sub\nfn\n"
              "K\x01\x85"
              "R"
              "}X\x01\x00\x00\x00"
              "aK\x02s"
              "b"
              "X\x07\x00\x00\x00storage\x85Q"
              "\x86."));
  ASSERT_TRUE(v.is(Kind::kTuple));
  const PickleValue call = v.item(0);
  ASSERT_TRUE(call.is(Kind::kCall));
  EXPECT_TRUE(call.is_call_to("mod.sub", "fn"));
  EXPECT_EQ(call.callable().global_module(), "mod.sub");
  EXPECT_EQ(call.callable().global_name(), "fn");
  EXPECT_EQ(call.args().item(0).as_int(), 1);
  ASSERT_TRUE(call.has_state());
  EXPECT_EQ(get(call.state(), "a").as_int(), 2);
  EXPECT_FALSE(call.has_kwargs());
  EXPECT_EQ(call.describe(), "object made by mod.sub.fn");
  const PickleValue pid = v.item(1);
  ASSERT_TRUE(pid.is(Kind::kPersistentId));
  EXPECT_EQ(pid.persistent_id().item(0).as_string(), "storage");
}

TEST(Pickle, StackGlobalNewObjAndMemo) {
  // Protocol 4: STACK_GLOBAL from two strings, MEMOIZE, NEWOBJ, BINGET of the class.
  const PickleValue v =
      parse(B("\x80\x04\x8c\x01m\x8c\x01"
              "C\x93\x94"
              ")\x81"
              "h\x00"
              "\x86."));
  ASSERT_TRUE(v.is(Kind::kTuple));
  EXPECT_TRUE(v.item(0).is_call_to("m", "C"));
  EXPECT_TRUE(v.item(1).is_global("m", "C"));
  EXPECT_EQ(v.item(0).callable().node_id(), v.item(1).node_id());
}

TEST(Pickle, IntegersOfEveryWidth) {
  auto int_of = [](const std::string& ops) { return parse(ops + ".").as_int(); };
  EXPECT_EQ(int_of(B("\x8a\x00")), 0);
  EXPECT_EQ(int_of("\x8a\x01\xff"), -1);
  EXPECT_EQ(int_of("\x8a\x02\x7f\xff"), -129);
  EXPECT_EQ(int_of(B("\x8a\x08\0\0\0\0\0\0\0\x80")), INT64_MIN);
  EXPECT_EQ(int_of(B("\x8a\x09\xff\xff\xff\xff\xff\xff\xff\x7f\0")), INT64_MAX);
  EXPECT_EQ(int_of(B("\x8b\x01\0\0\0\x05")), 5);  // LONG4
  EXPECT_EQ(int_of("J\xfe\xff\xff\xff"), -2);
  EXPECT_EQ(int_of("M\xff\xff"), 65535);
  // 2**63 does not fit: kept as bytes.
  const PickleValue big = parse(B("\x8a\x09\0\0\0\0\0\0\0\x80\0."));
  EXPECT_TRUE(big.is(Kind::kBigInt));
  EXPECT_EQ(big.describe(), "int of 9 bytes");
}

TEST(Pickle, BinFloatIsBigEndian) {
  EXPECT_EQ(parse(B("G\x3f\xf8\0\0\0\0\0\0.")).as_float(), 1.5);
  EXPECT_EQ(parse(B("G\xc0\x00\0\0\0\0\0\0.")).as_float(), -2.0);
}

TEST(Pickle, DeepNestingNeedsNoRecursion) {
  // 200000 nested lists: EMPTY_LIST x n then APPEND x (n - 1).
  const std::size_t n = 200000;
  std::string ops = "\x80\x02" + std::string(n, ']') + std::string(n - 1, 'a') + ".";
  const PickleValue v = parse(ops);
  EXPECT_TRUE(v.is(Kind::kList));
  EXPECT_EQ(v.item_count(), 1u);
}

TEST(Pickle, RefusesUnsupportedOpcodesNamingOpcodeAndOffset) {
  expect_error("\x80\x02I1\n.", {"0x49 (INT)", "protocol 0", "byte 2"});
  expect_error(file_bytes(test_fixture("pickle/protocol0.pkl")), {"protocol 0"});
  expect_error("\x80\x02\x82\x01.", {"EXT1", "byte 2"});
  expect_error("\x80\x02\x97.", {"NEXT_BUFFER"});
  expect_error("\x80\x02\xff.", {"unsupported pickle opcode 0xff", "byte 2"});
  expect_error("\x80\x06N.", {"protocol 6"});
}

TEST(Pickle, RefusesMalformedInput) {
  expect_error("", {"empty"});
  expect_error("\x80\x02N", {"without a STOP"});
  expect_error(
      "\x80\x02X\xff\xff\xff\xff"
      "abc.",
      {"truncated", "4294967295"});
  expect_error(B("\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff."), {"truncated"});
  expect_error(B("\x80\x02\x95\xff\x00\x00\x00\x00\x00\x00\x00N."), {"FRAME of 255 bytes"});
  expect_error("\x80\x02J\x01\x02", {"truncated", "BININT"});
  expect_error("\x80\x02R.", {"stack underflow", "byte 2"});
  expect_error("\x80\x02N(\x85.", {"stack underflow"});  // TUPLE1 cannot see below a MARK
  expect_error("\x80\x02h\x05.", {"memo key 5"});
  expect_error("\x80\x02}(N.", {"unclosed MARK"});
  expect_error("\x80\x02NN.", {"2 values"});
  expect_error("\x80\x02}(Nu.", {"odd number"});
  expect_error(
      "\x80\x02K\x01K\x02"
      "a.",
      {"APPEND", "int"});
  expect_error("\x80\x02]Nb.", {"BUILD", "list"});
  expect_error("\x80\x02t.", {"without a MARK"});
  expect_error(
      "\x80\x02"
      "cmodule_without_newline",
      {"end of line"});
  expect_error("\x80\x02K\x01N\x93.", {"STACK_GLOBAL"});
  expect_error("\x80\x02\x8b\xff\xff\xff\xff.", {"negative"});
}

TEST(Pickle, DescribeIsShort) {
  EXPECT_EQ(parse("N.").describe(), "None");
  EXPECT_EQ(parse("\x88.").describe(), "True");
  EXPECT_EQ(parse("K\x03.").describe(), "int 3");
  EXPECT_EQ(parse(B("X\x03\x00\x00\x00"
                    "cpu."))
                .describe(),
            "str 'cpu'");
  EXPECT_EQ(parse("(K\x01K\x02t.").describe(), "tuple of 2 items");
  EXPECT_EQ(parse("}.").describe(), "dict of 0 items");
  EXPECT_EQ(parse("ctorch\nFloatStorage\n.").describe(), "global torch.FloatStorage");
  EXPECT_EQ(parse("C\x02xy.").describe(), "bytes of length 2");
}

TEST(Pickle, TrailingBytesAfterStopAreIgnored) {
  EXPECT_EQ(parse("K\x07.garbage").as_int(), 7);
}
