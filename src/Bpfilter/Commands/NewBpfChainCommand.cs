using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>
/// Builds a chain from the rules piped or given: a hooked chain with -Hook (and its attach keys), or a user chain,
/// which only jumps and gotos reach, without.
/// </summary>
[Cmdlet(VerbsCommon.New, "BpfChain", DefaultParameterSetName = UserSet)]
[OutputType(typeof(Chain), ParameterSetName = [HookedSet])]
[OutputType(typeof(UserChain), ParameterSetName = [UserSet])]
public sealed class NewBpfChainCommand : PSCmdlet
{
    private const string HookedSet = "Hooked", UserSet = "User";
    private readonly List<Rule> _rules = new();

    [Parameter(Mandatory = true, Position = 0)]
    public string Name { get; set; } = "";

    [Parameter(Mandatory = true, ParameterSetName = HookedSet)]
    [HookTransformation]
    public Hook Hook { get; set; }

    [Parameter(ParameterSetName = HookedSet)]
    [ArgumentCompleter(typeof(InterfaceCompleter))]
    public string? Interface { get; set; }

    [Parameter(ParameterSetName = HookedSet)]
    [ValidateSet("accept", "drop", IgnoreCase = true)]
    public string Policy { get; set; } = "accept";

    [Parameter(ParameterSetName = HookedSet)]
    public XdpMode Mode { get; set; } = XdpMode.Native;

    [Parameter(ParameterSetName = HookedSet)]
    public int? Priority { get; set; }

    [Parameter(ParameterSetName = HookedSet)]
    public TcxOrder Order { get; set; } = TcxOrder.Last;

    [Parameter(ParameterSetName = HookedSet)]
    public string? Cgroup { get; set; }

    [Parameter(ParameterSetName = HookedSet)]
    [ArgumentCompleter(typeof(NetworkNamespaceCompleter))]
    public string? NetworkNamespace { get; set; }

    [Parameter(ValueFromPipeline = true)]
    public Rule[] Rule { get; set; } = [];

    protected override void ProcessRecord() => _rules.AddRange(Rule);

    protected override void EndProcessing()
    {
        try
        {
            WriteObject(ParameterSetName == HookedSet
                ? new Chain(Name, Hook, Interface, Verdict.Parse(Policy), _rules, Mode, Priority, Order, Cgroup, NetworkNamespace)
                : new UserChain(Name, _rules));
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
        }
    }
}
