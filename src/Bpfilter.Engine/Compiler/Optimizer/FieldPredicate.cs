using Bpfilter.Engine.Compiler.Matchers;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler.Optimizer;

/// <summary>An inclusive run of field values.</summary>
internal readonly record struct ValueRange(uint First, uint Last);

/// <summary>A prefix of the 128-bit number an address's four record words make (an IPv4 address is the top word).</summary>
internal readonly record struct Prefix128(UInt128 Value, int Length)
{
    public static UInt128 MaskOf(int length) => length == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - length);

    /// <summary>The prefix of <paramref name="length"/> bits (no more than this one's) that contains this one.</summary>
    public Prefix128 Truncate(int length) => new(Value & MaskOf(length), length);
}

/// <summary>What a rule asks of one field, in a form the classifier can split the field's values by.</summary>
internal abstract record FieldPredicate;

/// <summary>The value is in one of <see cref="Ranges"/> (sorted, disjoint, within the field's domain; none: never).</summary>
internal sealed record RangePredicate(ValueList<ValueRange> Ranges) : FieldPredicate;

/// <summary>The value is one of <see cref="Values"/> (sorted, distinct), or, negated, none of them.</summary>
internal sealed record ExactPredicate(ValueList<uint> Values, bool Negated) : FieldPredicate;

/// <summary>The address is in one of <see cref="Prefixes"/> (distinct), or, negated, in none of them.</summary>
internal sealed record AddressPredicate(ValueList<Prefix128> Prefixes, bool Negated) : FieldPredicate;

/// <summary>
/// Reads the conditions the compiler would test one by one back into per-field predicates. Going from the very
/// conditions the linear code emits, not from the rule's match, keeps both forms equal by construction: the same
/// family guard, the same has-transport test, the same masks. Conditions of one test (most rules share their family,
/// protocol and transport tests) are read once, and give the same predicate object.
/// </summary>
internal sealed class FieldPredicates
{
    private readonly Dictionary<(FieldTest, bool), (ClassifiedField Field, FieldPredicate Predicate)?> _single = new();

    /// <summary>The predicate of each field the conditions test, or null when one cannot be looked up (a set, a limit, a mark under a mask).</summary>
    public Dictionary<ClassifiedField, (FieldPredicate Predicate, List<Condition> Conditions)>? Of(IEnumerable<Condition> conditions)
    {
        var fields = new Dictionary<ClassifiedField, (FieldPredicate, List<Condition>)>();
        foreach (var condition in conditions)
        {
            (ClassifiedField Field, FieldPredicate Predicate)? read;
            if (condition.Alternatives.Count == 1)
            {
                var key = (condition.Alternatives[0], condition.Negated);
                if (!_single.TryGetValue(key, out read)) _single[key] = read = Read(condition);
            }
            else
            {
                if (condition.Alternatives.Count == 0) continue; // holds for every packet
                read = Read(condition);
            }
            if (read is not { } found)
            {
                if (condition.Alternatives is [AllOf { Tests.Count: 0 }] && !condition.Negated) continue; // a /0: holds for every packet
                return null;
            }
            var (field, predicate) = found;
            if (fields.TryGetValue(field, out var earlier))
            {
                // Two conditions on one field (TTL and hop limit share theirs): both must hold.
                if (earlier.Item1 is not RangePredicate a || predicate is not RangePredicate b) return null;
                earlier.Item2.Add(condition);
                fields[field] = (Intersect(a, b), earlier.Item2);
            }
            else
            {
                fields[field] = (predicate, [condition]);
            }
        }
        return fields;
    }

    /// <summary>The field and predicate of one condition; null when it cannot be looked up, or holds for every packet or none.</summary>
    private static (ClassifiedField, FieldPredicate)? Read(Condition condition)
    {
        // A /0 among the prefixes holds for every packet; negated, for none: such a rule is left to the linear code.
        if (condition.Alternatives.Any(a => a is AllOf { Tests.Count: 0 })) return null;
        var field = FieldOf(condition);
        if (field is null) return null;
        FieldPredicate? predicate = field.Kind switch
        {
            FieldKind.Small => Small(field, condition),
            FieldKind.Exact => Exact(condition),
            _ => Address(field, condition),
        };
        return predicate is null ? null : (field, predicate);
    }

    private static ClassifiedField? FieldOf(Condition condition)
    {
        ClassifiedField? field = null;
        foreach (var test in condition.Alternatives.SelectMany(Leaves))
        {
            var at = test switch
            {
                FieldEquals e => ClassifiedField.At(e.Field),
                FieldInRange r => ClassifiedField.At(r.Field),
                _ => null,
            };
            if (at is null || (field is not null && at != field)) return null;
            field = at;
        }
        return field;
    }

    private static IEnumerable<FieldTest> Leaves(FieldTest test) => test is AllOf all ? all.Tests.SelectMany(Leaves) : [test];

    private static RangePredicate? Small(ClassifiedField field, Condition condition)
    {
        var ranges = new List<ValueRange>();
        uint top = field.Domain - 1;
        foreach (var alternative in condition.Alternatives)
        {
            switch (alternative)
            {
                case FieldInRange r when r.First <= top:
                    ranges.Add(new ValueRange(r.First, Math.Min(r.Last, top)));
                    break;
                case FieldInRange:
                    break;
                case FieldEquals { Mask: uint.MaxValue } e:
                    if (e.Value <= top) ranges.Add(new ValueRange(e.Value, e.Value));
                    break;
                case FieldEquals e:
                    for (uint v = 0; v <= top; v++) if ((v & e.Mask) == e.Value) ranges.Add(new ValueRange(v, v));
                    break;
                default:
                    return null;
            }
        }
        var union = Normalize(ranges);
        return new RangePredicate(new(condition.Negated ? Complement(union, top) : union));
    }

    private static ExactPredicate? Exact(Condition condition)
    {
        var values = new SortedSet<uint>();
        foreach (var alternative in condition.Alternatives)
        {
            switch (alternative)
            {
                case FieldEquals { Mask: uint.MaxValue } e: values.Add(e.Value); break;
                case FieldInRange r when r.First == r.Last: values.Add(r.First); break;
                default: return null;
            }
        }
        return new ExactPredicate(new(values), condition.Negated);
    }

    private static AddressPredicate? Address(ClassifiedField field, Condition condition)
    {
        var prefixes = new HashSet<Prefix128>();
        foreach (var alternative in condition.Alternatives)
        {
            UInt128 value = 0, mask = 0;
            foreach (var leaf in Leaves(alternative))
            {
                if (leaf is not FieldEquals e) return null;
                int shift = 96 - 32 * field.WordAt(e.Field);
                mask |= (UInt128)e.Mask << shift;
                value |= (UInt128)(e.Value & e.Mask) << shift;
            }
            int length = (int)UInt128.LeadingZeroCount(~mask);
            if (mask != Prefix128.MaskOf(length)) return null; // not a prefix: no lookup structure holds it
            prefixes.Add(new Prefix128(value, length));
        }
        return new AddressPredicate(new(prefixes.OrderBy(p => p.Length).ThenBy(p => p.Value)), condition.Negated);
    }

    private static List<ValueRange> Normalize(List<ValueRange> ranges)
    {
        var merged = new List<ValueRange>();
        foreach (var r in ranges.OrderBy(r => r.First))
        {
            if (merged.Count > 0 && (ulong)r.First <= (ulong)merged[^1].Last + 1)
                merged[^1] = merged[^1] with { Last = Math.Max(merged[^1].Last, r.Last) };
            else
                merged.Add(r);
        }
        return merged;
    }

    private static List<ValueRange> Complement(List<ValueRange> ranges, uint top)
    {
        var result = new List<ValueRange>();
        ulong next = 0;
        foreach (var r in ranges)
        {
            if (r.First > next) result.Add(new ValueRange((uint)next, r.First - 1));
            next = (ulong)r.Last + 1;
        }
        if (next <= top) result.Add(new ValueRange((uint)next, top));
        return result;
    }

    private static RangePredicate Intersect(RangePredicate a, RangePredicate b)
    {
        var result = new List<ValueRange>();
        foreach (var x in a.Ranges)
            foreach (var y in b.Ranges)
                if (Math.Max(x.First, y.First) <= Math.Min(x.Last, y.Last)) result.Add(new ValueRange(Math.Max(x.First, y.First), Math.Min(x.Last, y.Last)));
        return new RangePredicate(new(Normalize(result)));
    }
}
