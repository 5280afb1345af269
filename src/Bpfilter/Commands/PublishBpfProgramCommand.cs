using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>
/// Compiles rulesets (or a list of rules) to eBPF, loads, attaches and pins them; an existing deployment of the
/// same name is replaced atomically.
/// </summary>
[Cmdlet(VerbsData.Publish, "BpfProgram", SupportsShouldProcess = true, DefaultParameterSetName = RulesetSet)]
[OutputType(typeof(DeploymentInfo))]
public sealed class PublishBpfProgramCommand : PSCmdlet
{
    private const string RulesetSet = "Ruleset", RuleSet = "Rule";
    private readonly List<Rule> _rules = new();

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = RulesetSet)]
    public Ruleset? Ruleset { get; set; }

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = RuleSet)]
    public Rule[] Rule { get; set; } = [];

    [Parameter(Mandatory = true, ParameterSetName = RuleSet)]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string Name { get; set; } = "";

    [Parameter(ParameterSetName = RuleSet)]
    [ArgumentCompleter(typeof(InterfaceCompleter))]
    public string? Interface { get; set; }

    [Parameter(ParameterSetName = RuleSet)]
    [HookTransformation]
    [ArgumentCompleter(typeof(HookCompleter))]
    public Hook Hook { get; set; } = Hook.Xdp;

    [Parameter(ParameterSetName = RuleSet)]
    public string? Cgroup { get; set; }

    [Parameter(ParameterSetName = RuleSet)]
    public int? Priority { get; set; }

    [Parameter(ParameterSetName = RuleSet)]
    public TcxOrder Order { get; set; } = TcxOrder.Last;

    [Parameter(ParameterSetName = RuleSet)]
    [ValidateSet("accept", "drop", IgnoreCase = true)]
    public string Policy { get; set; } = "accept";

    [Parameter(ParameterSetName = RuleSet)]
    public XdpMode Mode { get; set; } = XdpMode.Native;

    [Parameter(ParameterSetName = RuleSet)]
    public string Chain { get; set; } = "INPUT";

    [Parameter]
    [ArgumentCompleter(typeof(NetworkNamespaceCompleter))]
    public string? NetworkNamespace { get; set; }

    [Parameter]
    public SwitchParameter NoOptimize { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == RulesetSet) Publish(Ruleset!);
        else _rules.AddRange(Rule);
    }

    protected override void EndProcessing()
    {
        if (ParameterSetName != RuleSet) return;
        Ruleset ruleset;
        try
        {
            ruleset = new Ruleset(Name, [new Chain(Chain, Hook, Interface, Verdict.Parse(Policy), _rules, Mode, Priority, Order, Cgroup)]);
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
            return;
        }
        Publish(ruleset);
    }

    private void Publish(Ruleset ruleset)
    {
        var where = string.Join(", ", ruleset.Chains.Select(c => c.AttachPoint))
            + (NetworkNamespace is null ? "" : $" in network namespace {NetworkNamespace}");
        if (!ShouldProcess($"deployment '{ruleset.Name}' ({where})", "Publish eBPF program")) return;
        try
        {
            WriteObject(Publisher.Publish(ruleset, new PublishOptions(NetworkNamespace) { Optimize = !NoOptimize }, WriteVerbose));
        }
        catch (BpfilterException e)
        {
            WriteError(ErrorRecords.From(e, ruleset));
        }
    }
}
