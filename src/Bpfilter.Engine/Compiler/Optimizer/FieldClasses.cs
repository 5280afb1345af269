using System.Buffers.Binary;

namespace Bpfilter.Engine.Compiler.Optimizer;

/// <summary>The classifier needs more entries than it allows itself: the caller splits the rules or tests them one by one.</summary>
internal sealed class BudgetExceededException() : Exception("the classification tables would be too large");

/// <summary>How an address field is looked up: only its top word or all four; by exact value or longest prefix.</summary>
internal sealed record AddressLookup(bool TopWordOnly, bool LongestPrefix)
{
    public int DataBytes => TopWordOnly ? 4 : 16;
    public int Bits => TopWordOnly ? 32 : 128;
}

/// <summary>
/// One field split into classes for a group of rules: values a rule treats alike fall in one class, and each class is
/// the set of the group's rules that hold for its values. Class 0 is the class of the most values (the default, where
/// nothing is stored), so lookup tables store only the others. For an address, the cells are those of a longest-prefix
/// match: the addresses whose longest stored prefix is P all lie in the same rules' prefixes (prefixes nest), so one
/// trie entry per prefix, holding P's class, splits the space exactly.
/// </summary>
internal sealed class FieldClasses
{
    /// <summary>How many rule memberships all classes together may hold before the classifier gives up on a group.</summary>
    public const int MembershipBudget = 4_000_000;

    private FieldClasses(ClassifiedField field, List<int[]> classes, List<(byte[] Key, int Class)> entries, AddressLookup? address, int ruleCount,
        List<(uint First, uint Last, int Class)>? runs = null)
    {
        Runs = runs ?? [];
        Field = field;
        Classes = classes;
        Entries = entries;
        Address = address;
        var of = Enumerable.Range(0, ruleCount).Select(_ => new List<int>()).ToArray();
        for (int c = 0; c < classes.Count; c++) foreach (var rule in classes[c]) of[rule].Add(c);
        ClassesOfRule = of.Select(l => l.ToArray()).ToArray();
    }

    public ClassifiedField Field { get; }

    /// <summary>Each class's rules (indices into the group), ascending.</summary>
    public IReadOnlyList<int[]> Classes { get; }

    /// <summary>The classes each rule of the group holds in.</summary>
    public int[][] ClassesOfRule { get; }

    /// <summary>The lookup map's keys and the class each maps to (class 0 is left out of arrays, and is what a miss means).</summary>
    public IReadOnlyList<(byte[] Key, int Class)> Entries { get; }

    public AddressLookup? Address { get; }

    /// <summary>Small fields: every run of values and its class (class 0 included), for maps that store something else per class.</summary>
    public IReadOnlyList<(uint First, uint Last, int Class)> Runs { get; }

    public static FieldClasses Split(ClassifiedField field, IReadOnlyList<FieldPredicate> predicates) => field.Kind switch
    {
        FieldKind.Small => SplitRanges(field, predicates.Cast<RangePredicate>().ToList()),
        FieldKind.Exact => SplitExact(field, predicates.Cast<ExactPredicate>().ToList()),
        _ => SplitAddresses(field, predicates.Cast<AddressPredicate>().ToList()),
    };

    /// <summary>A sweep over the field's values: each boundary of a rule's ranges starts a new elementary run.</summary>
    private static FieldClasses SplitRanges(ClassifiedField field, List<RangePredicate> rules)
    {
        var starts = new Dictionary<uint, List<int>>();
        var ends = new Dictionary<ulong, List<int>>();
        var bounds = new SortedSet<ulong> { 0, field.Domain };
        for (int r = 0; r < rules.Count; r++)
        {
            foreach (var range in rules[r].Ranges)
            {
                (starts.TryGetValue(range.First, out var s) ? s : starts[range.First] = new()).Add(r);
                (ends.TryGetValue((ulong)range.Last + 1, out var e) ? e : ends[(ulong)range.Last + 1] = new()).Add(r);
                bounds.Add(range.First);
                bounds.Add((ulong)range.Last + 1);
            }
        }
        var active = new SortedSet<int>();
        var runs = new List<(uint First, uint Last, int[] Rules)>();
        long memberships = 0;
        ulong? previous = null;
        foreach (var bound in bounds)
        {
            if (previous is { } first && first < field.Domain)
            {
                var members = active.ToArray();
                memberships += members.Length;
                if (memberships > MembershipBudget) throw new BudgetExceededException();
                runs.Add(((uint)first, (uint)(bound - 1), members));
            }
            if (ends.TryGetValue(bound, out var ending)) foreach (var r in ending) active.Remove(r);
            if (bound < field.Domain && starts.TryGetValue((uint)bound, out var starting)) foreach (var r in starting) active.Add(r);
            previous = bound;
        }
        // The class that covers the most values becomes class 0, the one the array does not store.
        var ids = new Dictionary<int[], int>(RulesComparer.Instance);
        var sizes = new List<long>();
        var classes = new List<int[]>();
        var runClass = new int[runs.Count];
        for (int i = 0; i < runs.Count; i++)
        {
            if (!ids.TryGetValue(runs[i].Rules, out var id))
            {
                id = ids[runs[i].Rules] = classes.Count;
                classes.Add(runs[i].Rules);
                sizes.Add(0);
            }
            sizes[id] += (long)runs[i].Last - runs[i].First + 1;
            runClass[i] = id;
        }
        int widest = sizes.IndexOf(sizes.Max());
        int Renumber(int id) => id == widest ? 0 : id == 0 ? widest : id;
        (classes[0], classes[widest]) = (classes[widest], classes[0]);
        var classRuns = runs.Select((r, i) => (r.First, r.Last, Renumber(runClass[i]))).ToList();
        var entries = new List<(byte[], int)>();
        foreach (var (first, last, id) in classRuns)
        {
            if (id == 0) continue;
            for (ulong v = first; v <= last; v++) entries.Add((U32(v), id));
        }
        return new FieldClasses(field, classes, entries, null, rules.Count, classRuns);
    }

    private static FieldClasses SplitExact(ClassifiedField field, List<ExactPredicate> rules)
    {
        var negated = Enumerable.Range(0, rules.Count).Where(r => rules[r].Negated).ToArray();
        var byValue = new SortedDictionary<uint, List<int>>();
        for (int r = 0; r < rules.Count; r++)
            foreach (var v in rules[r].Values) (byValue.TryGetValue(v, out var l) ? l : byValue[v] = new()).Add(r);
        var cells = byValue.Select(kv => (Key: U32(kv.Key), Rules: Holding(kv.Value, negated, rules))).ToList();
        return Number(field, negated, cells, null, rules.Count);
    }

    private static FieldClasses SplitAddresses(ClassifiedField field, List<AddressPredicate> rules)
    {
        var all = rules.SelectMany(r => r.Prefixes).Distinct().ToList();
        bool top = all.All(p => p.Length <= 32);
        int bits = top ? 32 : 128;
        var lookup = new AddressLookup(top, LongestPrefix: all.Any(p => p.Length != bits));
        var negated = Enumerable.Range(0, rules.Count).Where(r => rules[r].Negated).ToArray();
        var owners = new Dictionary<Prefix128, List<int>>();
        for (int r = 0; r < rules.Count; r++)
            foreach (var p in rules[r].Prefixes) (owners.TryGetValue(p, out var l) ? l : owners[p] = new()).Add(r);
        var lengths = owners.Keys.Select(p => p.Length).Distinct().Order().ToArray();
        var cells = new List<(byte[] Key, int[] Rules)>();
        long memberships = 0;
        foreach (var prefix in all)
        {
            // The rules whose prefixes contain this one are the rules of its ancestors among the stored prefixes.
            var containing = new List<int>();
            foreach (var length in lengths.TakeWhile(l => l <= prefix.Length))
                if (owners.TryGetValue(prefix.Truncate(length), out var l)) containing.AddRange(l);
            var holding = Holding(containing, negated, rules);
            memberships += holding.Length;
            if (memberships > MembershipBudget) throw new BudgetExceededException();
            cells.Add((AddressKey(prefix, lookup), holding));
        }
        return Number(field, negated, cells, lookup, rules.Count);
    }

    /// <summary>The rules that hold in a cell: the un-negated ones listed there, and the negated ones not listed.</summary>
    private static int[] Holding(List<int> listed, int[] negated, IReadOnlyList<FieldPredicate> rules)
    {
        var set = new SortedSet<int>(listed.Where(r => !IsNegated(rules[r])));
        var listedNegated = listed.Where(r => IsNegated(rules[r])).ToHashSet();
        foreach (var r in negated) if (!listedNegated.Contains(r)) set.Add(r);
        return set.ToArray();
    }

    private static bool IsNegated(FieldPredicate p) => p is ExactPredicate { Negated: true } or AddressPredicate { Negated: true };

    /// <summary>Class 0 is the default cell's (a miss: only the negated rules hold there); each stored key gets its cell's class.</summary>
    private static FieldClasses Number(ClassifiedField field, int[] negated, List<(byte[] Key, int[] Rules)> cells, AddressLookup? address, int ruleCount)
    {
        var ids = new Dictionary<int[], int>(RulesComparer.Instance) { [negated] = 0 };
        var classes = new List<int[]> { negated };
        var entries = new List<(byte[], int)>();
        foreach (var (key, rules) in cells)
        {
            if (!ids.TryGetValue(rules, out var id))
            {
                id = ids[rules] = classes.Count;
                classes.Add(rules);
            }
            entries.Add((key, id));
        }
        return new FieldClasses(field, classes, entries, address, ruleCount);
    }

    /// <summary>A hash key (the record's host-order words, little-endian as the stack holds them) or an LPM key ({u32 length; the bits big-endian}).</summary>
    public static byte[] AddressKey(Prefix128 prefix, AddressLookup lookup)
    {
        var key = new byte[(lookup.LongestPrefix ? 4 : 0) + lookup.DataBytes];
        if (lookup.LongestPrefix)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)prefix.Length);
            for (int w = 0; w < lookup.DataBytes / 4; w++) BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(4 + 4 * w), Word(prefix.Value, w));
        }
        else
        {
            for (int w = 0; w < lookup.DataBytes / 4; w++) BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(4 * w), Word(prefix.Value, w));
        }
        return key;
    }

    public static uint Word(UInt128 value, int word) => (uint)(value >> (96 - 32 * word));

    public static byte[] U32(ulong value)
    {
        var key = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)value);
        return key;
    }

    /// <summary>Compares rule sets by content.</summary>
    private sealed class RulesComparer : IEqualityComparer<int[]>
    {
        public static readonly RulesComparer Instance = new();
        public bool Equals(int[]? a, int[]? b) => a.AsSpan().SequenceEqual(b);

        public int GetHashCode(int[] rules)
        {
            var hash = new HashCode();
            foreach (var r in rules) hash.Add(r);
            return hash.ToHashCode();
        }
    }
}
