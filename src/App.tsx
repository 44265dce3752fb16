import { AnimationPanel } from './components/AnimationPanel';
import { BackendControls } from './components/BackendControls';
import { ControlsPanel } from './components/ControlsPanel';
import { Filmstrip } from './components/Filmstrip';
import { HistoryGallery } from './components/HistoryGallery';
import { ImagePanel } from './components/ImagePanel';
import { ModelPicker } from './components/ModelPicker';
import { TimingPanel } from './components/TimingPanel';
import { useShortcuts } from './components/useShortcuts';
import { selectAppState } from './store/selectors';
import { useStudio } from './store/store';

export function App() {
  const appState = useStudio(selectAppState);
  const modelName = useStudio((s) => s.model.info?.name);
  useShortcuts();

  return (
    <div className="app" data-state={appState}>
      <header className="topbar">
        <div className="brand">
          <h1>
            WebDiT <span className="brand-sub">studio</span>
          </h1>
          {modelName && <span className="model-name">{modelName}</span>}
          <ModelPicker />
        </div>
        <BackendControls />
      </header>
      <main className="workspace">
        <ControlsPanel />
        <ImagePanel />
      </main>
      <div className="runtools">
        <Filmstrip />
        <TimingPanel />
        <AnimationPanel />
      </div>
      <HistoryGallery />
      <footer className="footer">Runs entirely in your browser. Nothing is uploaded.</footer>
    </div>
  );
}
