using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>
/// A set reference (@name): the key is built in the scratch buffer from the record, in the layout
/// <see cref="SetMaps"/> gives the map, and looked up; the set holds when the lookup finds it.
/// </summary>
internal sealed record SetLookup(MapSpec Map, SetType Type, short Word0, bool Port) : FieldTest
{
    public static Condition Address(NamedSet set, AddressMatch match, bool source) =>
        new(new SetLookup(SetMaps.SpecOf(set), set.Type, source ? PacketRecord.SourceAddress(0) : PacketRecord.DestinationAddress(0), false), match.Negated);

    public static Condition Ports(NamedSet set, PortMatch match, bool source) =>
        new(new SetLookup(SetMaps.SpecOf(set), set.Type, source ? PacketRecord.SourcePort : PacketRecord.DestinationPort, true), match.Negated);

    public override void Emit(Assembler asm, bool jumpIfHolds, Label target)
    {
        short key = PacketRecord.Buffer;
        if (Port)
        {
            PacketRecord.Load(asm, Word0);
            asm.Store(Size.Word, Register.R10, key, Register.R0);
        }
        else
        {
            bool network = Type is SetType.Ipv4Network or SetType.Ipv6Network;
            int words = Type is SetType.Ipv4Address or SetType.Ipv4Network ? 1 : 4;
            short data = key;
            if (network)
            {
                asm.Store(Size.Word, Register.R10, key, words * 32);
                data += 4;
            }
            for (int i = 0; i < words; i++)
            {
                PacketRecord.Load(asm, (short)(Word0 - 8 * i));
                asm.FromBigEndian(Register.R0, 32); // host order back to network order
                asm.Store(Size.Word, Register.R10, (short)(data + 4 * i), Register.R0);
            }
        }
        asm.LoadMap(Register.R1, Map);
        asm.Mov(Register.R2, Register.R10);
        asm.Alu64(AluOp.Add, Register.R2, key);
        asm.Call(Helper.MapLookupElem);
        asm.Jump(jumpIfHolds ? JumpOp.Jne : JumpOp.Jeq, Register.R0, 0, target);
    }
}
