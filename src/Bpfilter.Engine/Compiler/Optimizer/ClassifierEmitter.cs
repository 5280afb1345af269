using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler.Optimizer;

/// <summary>
/// Emits a classified run: r6 holds the best candidate so far (0xffffffff: none), each group may lower it, and the
/// smallest candidate decides: r9 = its rule's counter slot, r6 = its verdict's return code, on to the epilogue. The
/// code is the same size whatever the number of rules; only the maps grow with them. Lookups read their keys
/// straight from the packet record where the map is keyed by a record field, and build the others in scratch space
/// below the record's (which the parser and the set lookups do not use).
/// </summary>
internal static class ClassifierEmitter
{
    private const short ClassIds = -352;   // u32 class per looked-up field (16 at most)
    private const short Key = -448;        // up to 96 bytes of hash key, or an array index
    private const short PrefixKey = -480;  // {u32 prefix length; 16 bytes} for an LPM trie
    private const Register Best = Register.R6;

    /// <param name="firstSlot">The counter slot of the segment's first rule (the chain's slots follow its rules in order).</param>
    public static void Emit(Assembler asm, ClassifierSegment segment, int firstSlot, Func<VerdictKind, int> returnCode, Label count, Label noMatch)
    {
        var decide = asm.NewLabel("classified");
        asm.Alu32(AluOp.Mov, Best, -1);
        foreach (var group in segment.Groups)
        {
            var next = asm.NewLabel("group_next");
            // Groups come in the order of their first rules: once the best is earlier than this group's first rule, no later group wins.
            asm.Jump32(JumpOp.Jlt, Best, group.FirstCandidate, decide);
            foreach (var guard in group.Guards) guard.Emit(asm, next);
            switch (group.Mode)
            {
                case GroupMode.First:
                    asm.Alu32(AluOp.Mov, Best, (int)group.FirstCandidate);
                    break;
                case GroupMode.ExactTuple:
                    for (int f = 0; f < group.Fields.Count; f++)
                    {
                        int end = f + 1 < group.Fields.Count ? group.KeyOffsets[f + 1] : (int)group.Table!.KeySize;
                        CopyWords(asm, group.Fields[f], (short)(Key + group.KeyOffsets[f]), (end - group.KeyOffsets[f]) / 4);
                    }
                    LookupTable(asm, group.Table!, Key, next);
                    break;
                case GroupMode.SingleField:
                    LookupField(asm, group, 0);
                    Improve(asm, next);
                    break;
                default:
                    for (int f = 0; f < group.Fields.Count; f++)
                    {
                        LookupField(asm, group, f);
                        asm.Store(Size.Word, Register.R10, (short)(ClassIds + 4 * f), Register.R1);
                    }
                    if (group.Mode == GroupMode.ClassArray)
                    {
                        // index = c0 + C0 * (c1 + C1 * (c2 + ...)), as the table was laid out
                        int last = group.Fields.Count - 1;
                        asm.Load(Size.Word, Register.R1, Register.R10, (short)(ClassIds + 4 * last));
                        for (int f = last - 1; f >= 0; f--)
                        {
                            asm.Alu64(AluOp.Mul, Register.R1, group.Classes[f].Classes.Count);
                            asm.Load(Size.Word, Register.R2, Register.R10, (short)(ClassIds + 4 * f));
                            asm.Alu64(AluOp.Add, Register.R1, Register.R2);
                        }
                        asm.Store(Size.Word, Register.R10, Key, Register.R1);
                        LookupTable(asm, group.Table!, Key, next);
                    }
                    else
                    {
                        LookupTable(asm, group.Table!, ClassIds, next);
                    }
                    break;
            }
            asm.Mark(next);
        }

        asm.Mark(decide);
        asm.Jump32(JumpOp.Jeq, Best, 0xffffffff, noMatch);
        asm.Mov32(Register.R9, Best);
        asm.Alu64(AluOp.Rsh, Register.R9, 1);
        asm.Alu64(AluOp.Add, Register.R9, firstSlot - segment.Start - 1); // candidates count positions in the chain from 1
        if (segment.AnyDrops && segment.AnyAccepts)
        {
            var drop = asm.NewLabel("classified_drop");
            asm.Jump(JumpOp.Jset, Best, 1, drop);
            asm.Mov(Best, returnCode(VerdictKind.Accept));
            asm.Jump(count);
            asm.Mark(drop);
            asm.Mov(Best, returnCode(VerdictKind.Drop));
        }
        else
        {
            asm.Mov(Best, returnCode(segment.AnyDrops ? VerdictKind.Drop : VerdictKind.Accept));
        }
        asm.Jump(count);
    }

    /// <summary>r1 = the class (or, for a single field, the candidate) of the packet's value of field <paramref name="index"/>.</summary>
    private static void LookupField(Assembler asm, ClassifierGroup group, int index)
    {
        var field = group.Fields[index];
        var map = group.FieldMaps[index];
        short key;
        if (field.Kind != FieldKind.Address)
        {
            key = field.Offset;
        }
        else if (group.Classes[index].Address!.LongestPrefix)
        {
            var lookup = group.Classes[index].Address!;
            key = PrefixKey;
            asm.Store(Size.Word, Register.R10, PrefixKey, lookup.Bits);
            for (int w = 0; w < lookup.DataBytes / 4; w++)
            {
                PacketRecord.Load(asm, (short)(field.Offset - 8 * w));
                asm.FromBigEndian(Register.R0, 32); // the trie compares bits from the most significant: network order
                asm.Store(Size.Word, Register.R10, (short)(PrefixKey + 4 + 4 * w), Register.R0);
            }
        }
        else if (group.Classes[index].Address!.TopWordOnly)
        {
            key = field.Offset;
        }
        else
        {
            key = Key;
            CopyWords(asm, field, Key, 4);
        }
        var found = asm.NewLabel("class_found");
        var done = asm.NewLabel("class_read");
        asm.LoadMap(Register.R1, map);
        asm.Mov(Register.R2, Register.R10);
        asm.Alu64(AluOp.Add, Register.R2, key);
        asm.Call(Helper.MapLookupElem);
        asm.Jump(JumpOp.Jne, Register.R0, 0, found);
        asm.Mov(Register.R1, (long)group.MissValue(index));
        asm.Jump(done);
        asm.Mark(found);
        asm.Load(Size.Word, Register.R1, Register.R0, 0);
        asm.Mark(done);
    }

    /// <summary>Copies <paramref name="words"/> words of a field from the record into a key (hash keys hold them as the record does).</summary>
    private static void CopyWords(Assembler asm, ClassifiedField field, short to, int words)
    {
        for (int w = 0; w < words; w++)
        {
            PacketRecord.Load(asm, (short)(field.Offset - 8 * w));
            asm.Store(Size.Word, Register.R10, (short)(to + 4 * w), Register.R0);
        }
    }

    /// <summary>Looks the key at <paramref name="key"/> up in a group's table; a hit may improve the best candidate.</summary>
    private static void LookupTable(Assembler asm, MapSpec table, short key, Label next)
    {
        asm.LoadMap(Register.R1, table);
        asm.Mov(Register.R2, Register.R10);
        asm.Alu64(AluOp.Add, Register.R2, key);
        asm.Call(Helper.MapLookupElem);
        asm.Jump(JumpOp.Jeq, Register.R0, 0, next);
        asm.Load(Size.Word, Register.R1, Register.R0, 0);
        Improve(asm, next);
    }

    /// <summary>r6 = r1 when r1 names a rule (not 0) earlier than r6's.</summary>
    private static void Improve(Assembler asm, Label next)
    {
        asm.Jump(JumpOp.Jeq, Register.R1, 0, next);
        asm.Jump(JumpOp.Jge, Register.R1, Best, next);
        asm.Mov32(Best, Register.R1);
    }
}
