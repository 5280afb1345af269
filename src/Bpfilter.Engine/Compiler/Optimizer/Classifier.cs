using System.Buffers.Binary;
using Bpfilter.Engine.Compiler.Matchers;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler.Optimizer;

/// <summary>A rule the classifier can take: it accepts or drops, and every condition is a lookup of one field.</summary>
internal sealed record ClassifierRule(int Position, bool Drops, Dictionary<ClassifiedField, (FieldPredicate Predicate, List<Condition> Conditions)> Fields)
{
    /// <summary>What the lookups yield for this rule: (position + 1) &lt;&lt; 1 | drops, so 0 is "no rule" and smaller is earlier.</summary>
    public uint Candidate => ((uint)Position + 1) << 1 | (Drops ? 1u : 0u);
}

/// <summary>How a group finds its first matching rule.</summary>
internal enum GroupMode
{
    /// <summary>No field beyond the guards: the group's first rule.</summary>
    First,

    /// <summary>Every rule names exact values: one hash keyed by the fields' values gives the rule.</summary>
    ExactTuple,

    /// <summary>One lookup per field gives its class; one field: the class map holds the rule itself.</summary>
    SingleField,

    /// <summary>One lookup per field gives its class; an array indexed by the classes together gives the rule.</summary>
    ClassArray,

    /// <summary>One lookup per field gives its class; a hash keyed by the classes together gives the rule.</summary>
    ClassHash,
}

/// <summary>
/// Rules that test the same guards (family, protocol, transport, fragment) with the same predicates, and look up the
/// same other fields. The guards are emitted once, as the linear code would; the fields through maps.
/// </summary>
internal sealed record ClassifierGroup(IReadOnlyList<Condition> Guards, IReadOnlyList<ClassifiedField> Fields, IReadOnlyList<ClassifierRule> Rules,
    GroupMode Mode, IReadOnlyList<FieldClasses> Classes, MapSpec? Table, IReadOnlyList<MapSpec> FieldMaps, IReadOnlyList<int> KeyOffsets)
{
    public uint FirstCandidate => Rules[0].Candidate;

    /// <summary>What a field's lookup means when the key is not there: class 0, or for a single field, class 0's first rule.</summary>
    public uint MissValue(int field) =>
        Mode != GroupMode.SingleField ? 0 : Classes[field].Classes[0] is { Length: > 0 } first ? Rules[first[0]].Candidate : 0;
}

/// <summary>
/// A run of consecutive rules classified together: packets go through every group (in the order of their first
/// rules), each yields the candidate of its first matching rule, and the smallest wins — the first matching rule of
/// the run, as testing them in order would find. A run none of whose rules match falls through to the rules after it.
/// </summary>
internal sealed record ClassifierSegment(int Start, int End, IReadOnlyList<ClassifierGroup> Groups, IReadOnlyList<LookupTable> Tables)
{
    public bool AnyDrops => Groups.Any(g => g.Rules.Any(r => r.Drops));
    public bool AnyAccepts => Groups.Any(g => g.Rules.Any(r => !r.Drops));
}

/// <summary>
/// The optimizer: splits a chain's rules into runs that are classified with map lookups and rules left to the linear
/// code (those with verdicts other than accept and drop, sets, limits, logs, and runs shorter than the options ask).
/// </summary>
internal static class Classifier
{
    /// <summary>Table entries one run may need before it is split in two.</summary>
    public const int EntryBudget = 2_000_000;

    /// <summary>Groups one run may hold before its guards are looked up too (and, beyond twice this, before it is split).</summary>
    public const int GroupBudget = 24;

    /// <summary>Product of class counts up to which a group's classes index an array instead of a hash.</summary>
    private const long ArrayTableLimit = 1 << 18;

    /// <summary>Values per rule up to which exact fields make one hash key each.</summary>
    private const int ExactTupleLimit = 16;

    /// <summary>The classified runs of <paramref name="rules"/>, by start; <paramref name="conditions"/> gives a rule's conditions as the linear code tests them.</summary>
    /// <param name="mapBudget">How many maps the runs may add to the program (the kernel allows 64 a program): a run
    /// that would need more than are left is left to the linear code.</param>
    public static Dictionary<int, ClassifierSegment> Plan(IReadOnlyList<Rule> rules, Func<int, Rule, IReadOnlyList<Condition>> conditions,
        int minimumRun, string name, ref int mapCount, int mapBudget)
    {
        var classifiable = new ClassifierRule?[rules.Count];
        var predicates = new FieldPredicates();
        for (int i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            if (rule.Verdict.Kind is not (VerdictKind.Accept or VerdictKind.Drop) || rule.Match.Limit is not null) continue;
            var fields = predicates.Of(conditions(i, rule));
            if (fields is not null) classifiable[i] = new ClassifierRule(i, rule.Verdict.Kind == VerdictKind.Drop, fields);
        }
        var segments = new Dictionary<int, ClassifierSegment>();
        for (int i = 0; i < rules.Count;)
        {
            int end = i;
            while (end < rules.Count && classifiable[end] is not null) end++;
            if (end - i >= minimumRun)
            {
                foreach (var segment in Build(classifiable, i, end, minimumRun, name, ref mapCount))
                {
                    if (segment.Tables.Count > mapBudget) continue;
                    mapBudget -= segment.Tables.Count;
                    segments[segment.Start] = segment;
                }
                i = end;
            }
            else
            {
                i = Math.Max(end, i + 1);
            }
        }
        return segments;
    }

    /// <summary>One segment for [start, end), or, when its tables would be too large, the segments of its halves.</summary>
    private static List<ClassifierSegment> Build(ClassifierRule?[] rules, int start, int end, int minimumRun, string name, ref int mapCount)
    {
        int saved = mapCount;
        try
        {
            return [Segment(rules.Skip(start).Take(end - start).Select(r => r!).ToList(), start, end, name, ref mapCount)];
        }
        catch (BudgetExceededException)
        {
            mapCount = saved;
            int middle = start + (end - start) / 2;
            if (middle - start < minimumRun || end - middle < minimumRun) return [];
            var first = Build(rules, start, middle, minimumRun, name, ref mapCount);
            return [.. first, .. Build(rules, middle, end, minimumRun, name, ref mapCount)];
        }
    }

    private static ClassifierSegment Segment(List<ClassifierRule> rules, int start, int end, string name, ref int mapCount)
    {
        var groups = Group(rules, guardsByValue: true);
        if (groups.Count > GroupBudget) groups = Group(rules, guardsByValue: false);
        if (groups.Count > 2 * GroupBudget) throw new BudgetExceededException();
        var tables = new List<LookupTable>();
        var built = new List<ClassifierGroup>();
        long entries = 0;
        foreach (var (guards, fields, members) in groups)
        {
            int before = tables.Count;
            if (BuildGroup(guards, fields, members, tables, $"{name}{mapCount++}") is { } group) built.Add(group);
            entries += tables.Skip(before).Sum(t => (long)t.Entries.Count);
            if (entries > EntryBudget) throw new BudgetExceededException();
        }
        return new ClassifierSegment(start, end, built, tables);
    }

    /// <summary>
    /// Groups by the guard predicates and the set of other fields; with <paramref name="guardsByValue"/> false the
    /// guards are looked up like the other fields (used when too many distinct guard combinations would make too many groups).
    /// </summary>
    private static List<(List<Condition> Guards, List<ClassifiedField> Fields, List<ClassifierRule> Rules)> Group(List<ClassifierRule> rules, bool guardsByValue)
    {
        var groups = new Dictionary<GroupKey, (List<Condition>, List<ClassifiedField>, List<ClassifierRule>)>();
        var order = new List<GroupKey>();
        foreach (var rule in rules)
        {
            var parts = new List<object>();
            var looked = new List<ClassifiedField>();
            foreach (var (field, (predicate, _)) in rule.Fields.OrderBy(f => f.Key.Order))
            {
                if (guardsByValue && field.Guard)
                {
                    parts.Add(field);
                    parts.Add(predicate);
                }
                else
                {
                    looked.Add(field);
                }
            }
            parts.Add(Separator);
            parts.AddRange(looked);
            var key = new GroupKey(parts.ToArray());
            if (!groups.TryGetValue(key, out var group))
            {
                var guards = rule.Fields.Where(f => guardsByValue && f.Key.Guard).OrderBy(f => f.Key.Order).SelectMany(f => f.Value.Conditions).ToList();
                group = (guards, looked, new List<ClassifierRule>());
                groups[key] = group;
                order.Add(key);
            }
            group.Item3.Add(rule);
        }
        return order.Select(k => groups[k]).ToList();
    }

    private static readonly object Separator = new();

    /// <summary>
    /// Rules share a group when their guard fields and predicates and their looked-up fields are the same objects:
    /// fields are singletons, and a guard's predicate is read once per distinct test (<see cref="FieldPredicates"/>),
    /// so equal guards meet; unequal objects for an equal predicate would only make one more group.
    /// </summary>
    private sealed class GroupKey(object[] parts) : IEquatable<GroupKey>
    {
        private readonly int _hash = parts.Aggregate(17, (h, p) => h * 31 + System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(p));

        public object[] Parts { get; } = parts;
        public bool Equals(GroupKey? other) => other is not null && Parts.Length == other.Parts.Length && Parts.Zip(other.Parts).All(p => ReferenceEquals(p.First, p.Second));
        public override bool Equals(object? obj) => Equals(obj as GroupKey);
        public override int GetHashCode() => _hash;
    }

    /// <summary>The group's lookups and their tables (added to <paramref name="tables"/>); null when no packet can match any of its rules.</summary>
    private static ClassifierGroup? BuildGroup(List<Condition> guards, List<ClassifiedField> fields, List<ClassifierRule> rules, List<LookupTable> tables, string prefix)
    {
        if (fields.Count == 0) return new ClassifierGroup(guards, fields, rules, GroupMode.First, [], null, [], []);
        if (ExactValues(fields, rules) is { } exact)
        {
            var spec = new MapSpec(ChainCompiler.KernelName("", prefix + "x"), MapType.Hash, (uint)exact.KeySize, 4, (uint)exact.Entries.Count);
            tables.Add(new LookupTable(spec, exact.Entries.Select(e => new KeyValuePair<byte[], byte[]>(e.Key, FieldClasses.U32(e.Value))).ToList()));
            return new ClassifierGroup(guards, fields, rules, GroupMode.ExactTuple, [], spec, [], exact.Offsets);
        }
        var classes = fields.Select(f => FieldClasses.Split(f, rules.Select(r => r.Fields[f].Predicate).ToList())).ToList();
        var fieldMaps = new List<MapSpec>();
        bool single = fields.Count == 1;
        for (int i = 0; i < classes.Count; i++)
        {
            var c = classes[i];
            // A single field's map holds the candidate of each class's first rule instead of the class.
            uint Value(int id) => single ? (c.Classes[id].Length == 0 ? 0 : rules[c.Classes[id][0]].Candidate) : (uint)id;
            // An array starts zeroed: only the values whose entry is not 0 are written. Hash and trie keys all are, even
            // those of empty classes (a trie must not fall back to a shorter prefix).
            var entries = c.Field.Kind == FieldKind.Small
                ? c.Runs.Where(r => Value(r.Class) != 0)
                    .SelectMany(r => Enumerable.Range(0, (int)(r.Last - r.First + 1)).Select(k => new KeyValuePair<byte[], byte[]>(FieldClasses.U32(r.First + (uint)k), FieldClasses.U32(Value(r.Class))))).ToList()
                : c.Entries.Select(e => new KeyValuePair<byte[], byte[]>(e.Key, FieldClasses.U32(Value(e.Class)))).ToList();
            var spec = FieldMap(c, entries.Count, ChainCompiler.KernelName("", $"{prefix}{c.Field.Code}"));
            fieldMaps.Add(spec);
            tables.Add(new LookupTable(spec, entries));
        }
        if (single) return new ClassifierGroup(guards, fields, rules, GroupMode.SingleField, classes, null, fieldMaps, []);

        long product = classes.Aggregate(1L, (p, c) => p * c.Classes.Count);
        bool array = product <= ArrayTableLimit;
        var table = new Dictionary<ulong, uint>();
        var byKey = new Dictionary<byte[], uint>(KeyComparer.Instance);
        long count = 0;
        for (int index = 0; index < rules.Count; index++)
        {
            var rule = rules[index];
            var choices = classes.Select(c => c.ClassesOfRule[index]).ToList();
            foreach (var combination in Cartesian(choices))
            {
                if (++count > EntryBudget) throw new BudgetExceededException();
                if (array)
                {
                    ulong flat = 0;
                    for (int f = classes.Count - 1; f >= 0; f--) flat = flat * (ulong)classes[f].Classes.Count + (ulong)combination[f];
                    table.TryAdd(flat, rule.Candidate);
                }
                else
                {
                    var key = new byte[4 * combination.Length];
                    for (int f = 0; f < combination.Length; f++) BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(4 * f), (uint)combination[f]);
                    byKey.TryAdd(key, rule.Candidate);
                }
            }
        }
        MapSpec tableSpec;
        List<KeyValuePair<byte[], byte[]>> tableEntries;
        if (array)
        {
            tableSpec = new MapSpec(ChainCompiler.KernelName("", prefix + "t"), MapType.Array, 4, 4, (uint)product);
            tableEntries = table.Select(kv => new KeyValuePair<byte[], byte[]>(FieldClasses.U32(kv.Key), FieldClasses.U32(kv.Value))).ToList();
        }
        else
        {
            if (byKey.Count == 0) return null;
            tableSpec = new MapSpec(ChainCompiler.KernelName("", prefix + "t"), MapType.Hash, (uint)(4 * classes.Count), 4, (uint)byKey.Count);
            tableEntries = byKey.Select(e => new KeyValuePair<byte[], byte[]>(e.Key, FieldClasses.U32(e.Value))).ToList();
        }
        tables.Add(new LookupTable(tableSpec, tableEntries));
        return new ClassifierGroup(guards, fields, rules, array ? GroupMode.ClassArray : GroupMode.ClassHash, classes, tableSpec, fieldMaps, []);
    }

    private static MapSpec FieldMap(FieldClasses c, int entries, string name) => c.Field.Kind switch
    {
        FieldKind.Small => new MapSpec(name, MapType.Array, 4, 4, c.Field.Domain),
        FieldKind.Exact => new MapSpec(name, MapType.Hash, 4, 4, (uint)Math.Max(1, entries)),
        _ when c.Address!.LongestPrefix => new MapSpec(name, MapType.LpmTrie, (uint)(4 + c.Address.DataBytes), 4, (uint)Math.Max(1, entries), 1 /* BPF_F_NO_PREALLOC */),
        _ => new MapSpec(name, MapType.Hash, (uint)c.Address!.DataBytes, 4, (uint)Math.Max(1, entries)),
    };

    /// <summary>
    /// When every rule names a few exact values in every field (hosts, single ports, a protocol), one hash keyed by the
    /// fields' values: the entries (first rule wins), the key size and each field's offset in the key.
    /// </summary>
    private static (List<(byte[] Key, uint Value)> Entries, int KeySize, List<int> Offsets)? ExactValues(List<ClassifiedField> fields, List<ClassifierRule> rules)
    {
        // Addresses: the top word when every prefix is a /32 there, all four when every one is a /128.
        var widths = new List<int>();
        foreach (var field in fields)
        {
            if (field.Kind != FieldKind.Address) { widths.Add(4); continue; }
            var lengths = rules.SelectMany(r => ((AddressPredicate)r.Fields[field].Predicate).Prefixes).Select(p => p.Length).Distinct().ToList();
            if (lengths is [32]) widths.Add(4);
            else if (lengths is [128]) widths.Add(16);
            else return null;
        }
        var offsets = new List<int>();
        int size = 0;
        foreach (var w in widths) { offsets.Add(size); size += w; }
        var entries = new List<(byte[], uint)>();
        var seen = new HashSet<byte[]>(KeyComparer.Instance);
        foreach (var rule in rules)
        {
            if (SingleKey(fields, widths, offsets, size, rule) is { } single)
            {
                if (seen.Add(single)) entries.Add((single, rule.Candidate));
                continue;
            }
            var values = new List<List<byte[]>>();
            foreach (var (field, width) in fields.Zip(widths))
            {
                var predicate = rule.Fields[field].Predicate;
                List<byte[]>? keys = predicate switch
                {
                    RangePredicate r when r.Ranges.All(x => x.First == x.Last) && r.Ranges.Count <= ExactTupleLimit => r.Ranges.Select(x => FieldClasses.U32(x.First)).ToList(),
                    ExactPredicate { Negated: false } e when e.Values.Count <= ExactTupleLimit => e.Values.Select(v => FieldClasses.U32(v)).ToList(),
                    AddressPredicate { Negated: false } a when a.Prefixes.Count <= ExactTupleLimit =>
                        a.Prefixes.Select(p => FieldClasses.AddressKey(p, new AddressLookup(width == 4, false))).ToList(),
                    _ => null,
                };
                if (keys is null) return null;
                values.Add(keys);
            }
            if (values.Aggregate(1L, (p, v) => p * v.Count) > ExactTupleLimit) return null;
            foreach (var combination in Cartesian(values.Select(v => Enumerable.Range(0, v.Count).ToArray()).ToList()))
            {
                var key = new byte[size];
                for (int f = 0; f < combination.Length; f++) values[f][combination[f]].CopyTo(key, offsets[f]);
                if (seen.Add(key)) entries.Add((key, rule.Candidate));
                if (entries.Count > EntryBudget) throw new BudgetExceededException();
            }
        }
        return entries.Count == 0 ? null : (entries, size, offsets);
    }

    /// <summary>The one key of a rule that names one exact value in each field (the common case, built without the product); null otherwise.</summary>
    private static byte[]? SingleKey(List<ClassifiedField> fields, List<int> widths, List<int> offsets, int size, ClassifierRule rule)
    {
        var key = new byte[size];
        for (int f = 0; f < fields.Count; f++)
        {
            switch (rule.Fields[fields[f]].Predicate)
            {
                case RangePredicate { Ranges: [var only] } when only.First == only.Last:
                    BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(offsets[f]), only.First);
                    break;
                case ExactPredicate { Negated: false, Values: [var value] }:
                    BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(offsets[f]), value);
                    break;
                case AddressPredicate { Negated: false, Prefixes: [var prefix] }:
                    for (int w = 0; w < widths[f] / 4; w++) BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(offsets[f] + 4 * w), FieldClasses.Word(prefix.Value, w));
                    break;
                default:
                    return null;
            }
        }
        return key;
    }

    private static IEnumerable<int[]> Cartesian(List<int[]> choices)
    {
        if (choices.Any(c => c.Length == 0)) yield break;
        var index = new int[choices.Count];
        while (true)
        {
            yield return index.Select((i, f) => choices[f][i]).ToArray();
            int k = choices.Count - 1;
            while (k >= 0 && ++index[k] == choices[k].Length) index[k--] = 0;
            if (k < 0) yield break;
        }
    }

    /// <summary>Compares map keys by content.</summary>
    private sealed class KeyComparer : IEqualityComparer<byte[]>
    {
        public static readonly KeyComparer Instance = new();
        public bool Equals(byte[]? a, byte[]? b) => a.AsSpan().SequenceEqual(b);

        public int GetHashCode(byte[] key)
        {
            var hash = new HashCode();
            hash.AddBytes(key);
            return hash.ToHashCode();
        }
    }
}
